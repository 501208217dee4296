"""An HTTP/1.1 client that sends a chunked body with a trailer section and reads the answer's trailers.

usage: h1_trailers_client.py PORT HOST PATH
Sends POST PATH with TE: trailers, two chunks and the trailer x-checksum:
abc123, reads a chunked answer whole and prints one line of JSON: status,
the body (as text) and the answer's trailer fields.
"""
import json
import socket
import sys


def read_line(sock, buf):
    while b"\r\n" not in buf[0]:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed early")
        buf[0] += chunk
    line, _, buf[0] = buf[0].partition(b"\r\n")
    return line


def read_exact(sock, buf, n):
    while len(buf[0]) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed early")
        buf[0] += chunk
    out, buf[0] = buf[0][:n], buf[0][n:]
    return out


def main():
    port, host, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTE: trailers\r\nTrailer: x-checksum\r\n"
                  "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc123\r\n\r\n").encode())
    buf = [b""]
    status = read_line(sock, buf).decode()
    headers = {}
    while True:
        line = read_line(sock, buf)
        if not line:
            break
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    body, trailers = b"", {}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(read_line(sock, buf).split(b";")[0], 16)
            if size == 0:
                break
            body += read_exact(sock, buf, size)
            read_exact(sock, buf, 2)
        while True:
            line = read_line(sock, buf)
            if not line:
                break
            k, _, v = line.decode().partition(":")
            trailers[k.strip().lower()] = v.strip()
    else:
        body = read_exact(sock, buf, int(headers.get("content-length", "0")))
    print(json.dumps({"status": status, "body": body.decode(errors="replace"), "trailers": trailers}))


if __name__ == "__main__":
    main()
