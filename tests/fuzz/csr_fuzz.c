/* libFuzzer target for certs/csr.c: arbitrary bytes as a CSR never crash the CA's checks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certs/csr.h"
#include "certs/spiffe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    crt_csr_t csr;
    if (crt_csr_parse((const char *)data, size, &csr) == 0) {
        /* An accepted CSR always carries a valid workload ID. */
        crt_spiffe_id_t id;
        if (crt_spiffe_parse_workload(csr.spiffe_id, strlen(csr.spiffe_id), &id) != CRT_SPIFFE_OK)
            abort();
    }
    crt_csr_clear(&csr);
    return 0;
}
