/*
 * libFuzzer target for the x86 decoder (arch/x86_64/decode.c). Decodes the input in every
 * CPU mode and abort()s if an invariant breaks:
 *  - the result is 0, -KEEL_EINVAL or -KEEL_EAGAIN; EAGAIN only with fewer than 15 bytes;
 *  - decoding is deterministic (same result, byte-identical struct);
 *  - on success: 1 <= len <= 15, len <= avail, and the parts add up: len = prefix_len +
 *    escape_len + opcode byte + ModRM + SIB + displacement + immediates; every byte before
 *    the opcode is a prefix; opcode_off/disp_off/imm_off point inside the instruction;
 *  - every strict prefix of a decoded instruction is -KEEL_EAGAIN, and appending bytes does
 *    not change the decoded instruction.
 * Reads beyond `avail` are caught by ASan: libFuzzer's buffer has exactly the input's size.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/errno.h>
#include <arch/decode.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool is_prefix(uint8_t b, enum x86_cpu_mode mode)
{
        switch (b) {
        case 0x26:
        case 0x2e:
        case 0x36:
        case 0x3e:
        case 0x64:
        case 0x65:
        case 0x66:
        case 0x67:
        case 0xf0:
        case 0xf2:
        case 0xf3:
                return true;
        }
        return mode == X86_MODE_LONG64 && (b & 0xf0) == 0x40;
}

static void check(const uint8_t *b, size_t n, enum x86_cpu_mode mode)
{
        struct x86_insn a, c;
        uint8_t ext[32];
        int r = x86_decode(b, n, mode, &a);

        if (r != 0 && r != -KEEL_EINVAL && r != -KEEL_EAGAIN)
                abort();
        if (r == -KEEL_EAGAIN && n >= X86_MAX_INSN_LEN)
                abort();
        if (x86_decode(b, n, mode, &c) != r || memcmp(&a, &c, sizeof(a)) != 0)
                abort();
        if (r != 0)
                return;
        if (a.len < 1 || a.len > X86_MAX_INSN_LEN || a.len > n || a.mode != mode)
                abort();
        if (a.len != a.prefix_len + a.escape_len + (a.map != X86_MAP_3DNOW) + a.has_modrm +
                         a.has_sib + a.disp_size + a.imm_size + a.imm2_size)
                abort();
        for (unsigned i = 0; i < a.prefix_len; i++)
                if (!is_prefix(b[i], mode))
                        abort();
        if (a.opcode_off >= a.len || b[a.opcode_off] != a.opcode)
                abort();
        if (a.disp_size && a.disp_off + a.disp_size > a.len)
                abort();
        if (a.imm_size && a.imm_off + a.imm_size > a.len)
                abort();
        if (a.op_size != 1 && a.op_size != 2 && a.op_size != 4 && a.op_size != 8)
                abort();
        if (a.addr_size != 2 && a.addr_size != 4 && a.addr_size != 8)
                abort();
        if (a.rip_relative && (mode != X86_MODE_LONG64 || !a.has_mem))
                abort();
        for (size_t k = 0; k < a.len; k++) {
                uint8_t *cut = malloc(k ? k : 1);

                memcpy(cut, b, k);
                if (x86_decode(cut, k, mode, &c) != -KEEL_EAGAIN)
                        abort();
                free(cut);
        }
        memset(ext, 0xa5, sizeof(ext));
        memcpy(ext, b, a.len);
        if (x86_decode(ext, sizeof(ext), mode, &c) != 0 || memcmp(&a, &c, sizeof(a)) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        for (int mode = X86_MODE_REAL16; mode <= X86_MODE_LONG64; mode++)
                check(data, size, (enum x86_cpu_mode)mode);
        return 0;
}
