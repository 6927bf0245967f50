"""Replicates a classic pcap (Ethernet, Linux cooked or raw IP link) until the output
reaches a size: each copy is shifted in time and gets other ports and client addresses,
so that it holds new connections. Used by benches/tcp_vs_tshark.sh.

usage: replicate_pcap.py SOURCE.pcap OUTPUT.pcap BYTES
"""
import struct, sys
src, dst, target = sys.argv[1], sys.argv[2], int(float(sys.argv[3]))
data = open(src, 'rb').read()
magic = struct.unpack('<I', data[:4])[0]
assert magic in (0xa1b2c3d4, 0xa1b23c4d), hex(magic)
nanos = magic == 0xa1b23c4d
link = struct.unpack('<I', data[20:24])[0]
recs = []
pos = 24
while pos + 16 <= len(data):
    sec, frac, cap, orig = struct.unpack('<IIII', data[pos:pos+16])
    recs.append((sec, frac, bytearray(data[pos+16:pos+16+cap]), orig))
    pos += 16 + cap
first = recs[0][0]; span = recs[-1][0] - first + 2
out = open(dst, 'wb')
out.write(data[:24])
size = 24; copy = 0
lh = {1: 14, 113: 16, 101: 0}[link]
while size < target:
    for sec, frac, pkt, orig in recs:
        p = bytearray(pkt)
        # Shift ports so each copy is a different set of connections.
        if len(p) > lh + 20 and (p[lh] >> 4) == 4 and p[lh+9] == 6:
            ihl = (p[lh] & 15) * 4
            t = lh + ihl
            if len(p) >= t + 4:
                sp, dp = struct.unpack('>HH', p[t:t+4])
                off = copy % 20000
                if sp > dp: sp = 1024 + (sp + off) % 64000
                else: dp = 1024 + (dp + off) % 64000
                p[t:t+4] = struct.pack('>HH', sp, dp)
                # vary the client address too
                p[lh+12+3] = (p[lh+12+3] + copy // 20000) & 255
        rec = struct.pack('<IIII', sec + copy * span, frac, len(p), orig) + p
        out.write(rec); size += len(rec)
    copy += 1
out.close()
print(dst, size, 'bytes', copy, 'copies', copy * len(recs), 'packets')
