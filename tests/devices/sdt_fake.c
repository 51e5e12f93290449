/* A stand-in for a reader vendor's SDT_* library, built by the tests with gcc.
 *
 * Every call reads its behaviour from the directory named by SDT_FAKE_DIR:
 *   state      lines of key=value, read afresh on each call:
 *                port=N      the port a reader answers on (0: unplugged, every call fails)
 *                card=0|1    a card on the reader
 *                sam=HEX     what SDT_GetSAMStatus returns (90 when well)
 *                read=ok|fail|short|slow|hang
 *                slow_ms=N   how long a slow read takes
 *   text.bin   the 256-byte text block on the card; photo.bin the 1024-byte photo
 *   release    while absent, a hanging read keeps hanging (at most 60 s)
 * and appends "<function> <thread id>" to calls.log, so a test can see who called.
 *
 * Return values follow the vendor convention: 0x90 done, 0x9F card found, 0x80 no card,
 * 0x81 select failed, 0x41 read failed, 0x01 port not open.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct state {
    int port;
    int card;
    int sam;
    char read[32];
    int slow_ms;
};

static const char *dir(void) {
    const char *d = getenv("SDT_FAKE_DIR");
    return d ? d : ".";
}

static void path_in(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", dir(), name);
}

static void log_call(const char *name) {
    char path[1024];
    path_in(path, sizeof path, "calls.log");
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "%s %ld\n", name, (long)syscall(SYS_gettid));
        fclose(f);
    }
}

static struct state load(void) {
    struct state s = {1001, 0, 0x90, "ok", 300};
    char path[1024], line[128];
    path_in(path, sizeof path, "state");
    FILE *f = fopen(path, "r");
    if (!f)
        return s;
    while (fgets(line, sizeof line, f)) {
        char key[32], value[32];
        if (sscanf(line, "%31[^=]=%31s", key, value) != 2)
            continue;
        if (!strcmp(key, "port"))
            s.port = atoi(value);
        else if (!strcmp(key, "card"))
            s.card = atoi(value);
        else if (!strcmp(key, "sam"))
            s.sam = (int)strtol(value, NULL, 16);
        else if (!strcmp(key, "read"))
            snprintf(s.read, sizeof s.read, "%s", value);
        else if (!strcmp(key, "slow_ms"))
            s.slow_ms = atoi(value);
    }
    fclose(f);
    return s;
}

static unsigned int read_file(const char *name, unsigned char *out, unsigned int size) {
    char path[1024];
    path_in(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t got = fread(out, 1, size, f);
    fclose(f);
    return (unsigned int)got;
}

static int released(void) {
    char path[1024];
    path_in(path, sizeof path, "release");
    return access(path, F_OK) == 0;
}

int SDT_OpenPort(int iPort) {
    log_call("SDT_OpenPort");
    return load().port == iPort ? 0x90 : 0x01;
}

int SDT_ClosePort(int iPort) {
    log_call("SDT_ClosePort");
    return load().port == iPort ? 0x90 : 0x01;
}

int SDT_GetSAMStatus(int iPort, int iIfOpen) {
    (void)iIfOpen;
    log_call("SDT_GetSAMStatus");
    struct state s = load();
    return s.port == iPort ? s.sam : 0x01;
}

int SDT_StartFindIDCard(int iPort, unsigned char *pucIIN, int iIfOpen) {
    (void)iIfOpen;
    log_call("SDT_StartFindIDCard");
    struct state s = load();
    if (s.port != iPort)
        return 0x01;
    memset(pucIIN, 0, 4);
    return s.card ? 0x9F : 0x80;
}

int SDT_SelectIDCard(int iPort, unsigned char *pucSN, int iIfOpen) {
    (void)iIfOpen;
    log_call("SDT_SelectIDCard");
    struct state s = load();
    if (s.port != iPort)
        return 0x01;
    memset(pucSN, 0, 8);
    return s.card ? 0x90 : 0x81;
}

int SDT_ReadBaseMsg(int iPort, unsigned char *pucCHMsg, unsigned int *puiCHMsgLen,
                    unsigned char *pucPHMsg, unsigned int *puiPHMsgLen, int iIfOpen) {
    (void)iIfOpen;
    log_call("SDT_ReadBaseMsg");
    struct state s = load();
    if (s.port != iPort)
        return 0x01;
    if (!s.card || !strcmp(s.read, "fail"))
        return 0x41;
    if (!strcmp(s.read, "slow"))
        usleep((useconds_t)s.slow_ms * 1000);
    if (!strcmp(s.read, "hang")) {
        for (int i = 0; i < 6000 && !released(); i++)
            usleep(10000);
    }
    *puiCHMsgLen = read_file("text.bin", pucCHMsg, 256);
    *puiPHMsgLen = read_file("photo.bin", pucPHMsg, 1024);
    if (!strcmp(s.read, "short"))
        *puiCHMsgLen = 200;
    return 0x90;
}

/* The common photo decoder entry point: 1024 bytes of wlt in, 102x126 BGR pixels out. */
int unpack(char *src, char *dst, int bmpSave) {
    if (bmpSave != 602)
        return 0;
    for (int i = 0; i < 102 * 126 * 3; i++)
        dst[i] = (char)(src[i % 1024] ^ (i & 0xff));
    return 1;
}
