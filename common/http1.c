/* HTTP/1.x response framing for blocking clients, on libh2o's picohttpparser. */
#include "common/http1.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "common/picohttpparser.h"

static int header_is(const struct phr_header *h, const char *name)
{
    return h->name_len == strlen(name) && strncasecmp(h->name, name, h->name_len) == 0;
}

int cmn_http1_parse_response(char *buf, size_t len, int *status, char **body, size_t *body_len, char *err,
                             size_t err_cap)
{
    struct phr_header headers[CMN_HTTP1_HEADERS_MAX];
    size_t num_headers = CMN_HTTP1_HEADERS_MAX, msg_len;
    const char *msg;
    int minor, chunked = 0;
    long long content_length = -1;

    int head = phr_parse_response(buf, len, &minor, status, &msg, &msg_len, headers, &num_headers, 0);
    if (head == -2) {
        snprintf(err, err_cap, "the response ended inside its headers");
        return -1;
    }
    if (head < 0 || *status < 100) { /* picohttpparser takes any three digits: "099" is no status */
        snprintf(err, err_cap, "the response is not HTTP/1.x");
        return -1;
    }
    for (size_t i = 0; i != num_headers; ++i) {
        if (header_is(&headers[i], "transfer-encoding")) {
            chunked = headers[i].value_len == 7 && strncasecmp(headers[i].value, "chunked", 7) == 0;
            if (!chunked) {
                snprintf(err, err_cap, "unsupported transfer-encoding %.*s", (int)headers[i].value_len, headers[i].value);
                return -1;
            }
        } else if (header_is(&headers[i], "content-length")) {
            content_length = 0;
            for (size_t j = 0; j != headers[i].value_len; ++j) {
                char c = headers[i].value[j];
                if (c < '0' || c > '9' || content_length > (1LL << 40)) {
                    snprintf(err, err_cap, "bad content-length");
                    return -1;
                }
                content_length = content_length * 10 + (c - '0');
            }
        }
    }
    *body = buf + head;
    *body_len = len - (size_t)head;
    if (chunked) {
        struct phr_chunked_decoder decoder = {0};
        decoder.consume_trailer = 1;
        ssize_t rest = phr_decode_chunked(&decoder, *body, body_len);
        if (rest == -1) {
            snprintf(err, err_cap, "malformed chunked body");
            return -1;
        }
        if (rest == -2) {
            snprintf(err, err_cap, "the response ended inside its chunked body");
            return -1;
        }
    } else if (content_length >= 0) {
        if ((long long)*body_len < content_length) {
            snprintf(err, err_cap, "the response ended %lld bytes short of its content-length",
                     content_length - (long long)*body_len);
            return -1;
        }
        *body_len = (size_t)content_length;
    }
    return 0;
}
