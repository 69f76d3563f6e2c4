// libcrypto (OpenSSL 3): Ed25519 signatures, SHA-256, HMAC and the CSPRNG for the marketplace and audit log.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/err.h>

// BIO_get_mem_data is a macro; Swift cannot call it.
static inline long brane_bio_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }
