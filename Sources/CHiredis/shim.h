#ifndef CHIREDIS_SHIM_H
#define CHIREDIS_SHIM_H

#include <hiredis.h>

// hiredis 0.14 (Debian 12) speaks RESP2 and has six reply types. hiredis 1.x adds
// RESP3 types; we never send HELLO 3, so they cannot appear on our connections, but
// the names stay defined so Swift code can recognise them on either version.
#if HIREDIS_MAJOR >= 1
#define CHIREDIS_HAS_RESP3 1
#else
#define CHIREDIS_HAS_RESP3 0
#endif

/// Creates a reader that builds hiredis's default `redisReply` objects.
static inline redisReader *CHiredis_redisReaderCreate(void) {
    return redisReaderCreate();
}

/// The reader's sticky error code (`REDIS_ERR_*`), 0 when healthy.
static inline int CHiredis_redisReaderErrorCode(const redisReader *reader) {
    return reader->err;
}

/// The reader's error text; valid until the reader is freed.
static inline const char *CHiredis_redisReaderErrorString(const redisReader *reader) {
    return reader->errstr;
}

/// The child at `index` of an array reply.
static inline redisReply *CHiredis_redisReplyElement(const redisReply *reply, size_t index) {
    return reply->element[index];
}

#endif
