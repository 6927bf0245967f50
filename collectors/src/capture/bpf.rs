//! Classic BPF as the kernel takes it: [`check`] says what SO_ATTACH_FILTER would refuse,
//! and [`run`], an interpreter for tests, runs a program the way the kernel's socket
//! filter does on a cooked (SOCK_DGRAM) packet socket, so that a compiled filter can be
//! checked on hand-built packets (the `testing` module) without a socket or privileges.
//!
//! The packet starts at the network header; the link-layer facts a cooked socket keeps
//! apart (protocol, packet type, interface) come in [`Aux`] and are read through the
//! kernel's ancillary offsets (`SKF_AD_OFF + SKF_AD_*`). Like the kernel, a load outside
//! the packet, a division by zero or anything malformed ends the run with 0 (reject).

use super::filter::BpfInsn;

// Instruction classes, sizes, modes, operations and sources (linux/bpf_common.h).
pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const MISC: u16 = 0x07;
pub const W: u16 = 0x00;
pub const H: u16 = 0x08;
pub const B: u16 = 0x10;
pub const IMM: u16 = 0x00;
pub const ABS: u16 = 0x20;
pub const IND: u16 = 0x40;
pub const MEM: u16 = 0x60;
pub const LEN: u16 = 0x80;
pub const MSH: u16 = 0xa0;
pub const ADD: u16 = 0x00;
pub const JA: u16 = 0x00;
pub const K: u16 = 0x00;
pub const X: u16 = 0x08;
/// RET source: the accumulator.
pub const RET_A: u16 = 0x10;
/// Scratch memory words (BPF_MEMWORDS).
pub const MEMWORDS: u32 = 16;
/// The most instructions the kernel takes (BPF_MAXINSNS).
pub const MAXINSNS: usize = 4096;

/// Base of the kernel's ancillary load offsets, and the fields used here.
pub const SKF_AD_OFF: u32 = -0x1000i32 as u32;
pub const SKF_AD_PROTOCOL: u32 = 0;
pub const SKF_AD_PKTTYPE: u32 = 4;
pub const SKF_AD_IFINDEX: u32 = 8;

pub fn class(code: u16) -> u16 {
    code & 0x07
}
pub fn size(code: u16) -> u16 {
    code & 0x18
}
pub fn mode(code: u16) -> u16 {
    code & 0xe0
}
pub fn op(code: u16) -> u16 {
    code & 0xf0
}
pub fn src(code: u16) -> u16 {
    code & 0x08
}

/// What the kernel knows about a packet besides its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aux {
    /// The EtherType (`skb->protocol`), e.g. 0x0800 for IPv4, 0x86dd for IPv6.
    pub protocol: u16,
    /// The packet type (`PACKET_HOST` = 0 ... `PACKET_OUTGOING` = 4).
    pub pkttype: u8,
    /// The interface index.
    pub ifindex: u32,
}

fn load(packet: &[u8], offset: u32, size: u16) -> Option<u32> {
    let n = match size {
        W => 4,
        H => 2,
        B => 1,
        _ => return None,
    };
    let start = usize::try_from(offset).ok()?;
    let bytes = packet.get(start..start.checked_add(n)?)?;
    Some(bytes.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)))
}

fn ancillary(k: u32, aux: &Aux) -> Option<u32> {
    match k.wrapping_sub(SKF_AD_OFF) {
        SKF_AD_PROTOCOL => Some(u32::from(aux.protocol)),
        SKF_AD_PKTTYPE => Some(u32::from(aux.pkttype)),
        SKF_AD_IFINDEX => Some(aux.ifindex),
        _ => None,
    }
}

fn alu(code: u16, a: u32, v: u32) -> Option<u32> {
    Some(match op(code) {
        0x00 => a.wrapping_add(v),
        0x10 => a.wrapping_sub(v),
        0x20 => a.wrapping_mul(v),
        0x30 => a.checked_div(v)?,
        0x40 => a | v,
        0x50 => a & v,
        0x60 => a.checked_shl(v).unwrap_or(0),
        0x70 => a.checked_shr(v).unwrap_or(0),
        0x80 => a.wrapping_neg(),
        0x90 => a.checked_rem(v)?,
        0xa0 => a ^ v,
        _ => return None,
    })
}

/// Runs `program` on `packet` (network header first) and returns what the kernel would:
/// the number of bytes to keep, 0 to drop.
pub fn run(program: &[BpfInsn], packet: &[u8], aux: &Aux) -> u32 {
    exec(program, packet, aux).unwrap_or(0)
}

fn exec(program: &[BpfInsn], packet: &[u8], aux: &Aux) -> Option<u32> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS as usize];
    let len = u32::try_from(packet.len()).ok()?;
    let mut pc = 0usize;
    loop {
        let i = *program.get(pc)?;
        pc += 1;
        match class(i.code) {
            LD => {
                a = match mode(i.code) {
                    IMM => i.k,
                    ABS if i.k >= SKF_AD_OFF => ancillary(i.k, aux)?,
                    ABS => load(packet, i.k, size(i.code))?,
                    IND => load(packet, x.checked_add(i.k)?, size(i.code))?,
                    MEM => *mem.get(i.k as usize)?,
                    LEN => len,
                    _ => return None,
                }
            }
            LDX => {
                x = match (mode(i.code), size(i.code)) {
                    (IMM, W) => i.k,
                    (MEM, W) => *mem.get(i.k as usize)?,
                    (LEN, W) => len,
                    (MSH, B) => (load(packet, i.k, B)? & 0x0f) << 2,
                    _ => return None,
                }
            }
            ST => *mem.get_mut(i.k as usize)? = a,
            STX => *mem.get_mut(i.k as usize)? = x,
            ALU => a = alu(i.code, a, if src(i.code) == X { x } else { i.k })?,
            JMP => {
                let v = if src(i.code) == X { x } else { i.k };
                let skip = match op(i.code) {
                    JA => usize::try_from(i.k).ok()?,
                    0x10 => usize::from(if a == v { i.jt } else { i.jf }),
                    0x20 => usize::from(if a > v { i.jt } else { i.jf }),
                    0x30 => usize::from(if a >= v { i.jt } else { i.jf }),
                    0x40 => usize::from(if a & v != 0 { i.jt } else { i.jf }),
                    _ => return None,
                };
                // Forward only: a jump past the end ends the run (reject), so every run
                // terminates.
                pc = pc.checked_add(skip)?;
            }
            RET => return Some(if i.code & RET_A != 0 { a } else { i.k }),
            MISC => match i.code & 0xf8 {
                0x00 => x = a,
                0x80 => a = x,
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// What the kernel's `bpf_check_classic` would refuse, said before SO_ATTACH_FILTER does.
pub fn check(program: &[BpfInsn]) -> Result<(), String> {
    if program.is_empty() || program.len() > MAXINSNS {
        return Err(format!("it has {} instructions; the kernel takes 1 to {MAXINSNS}", program.len()));
    }
    for (i, ins) in program.iter().enumerate() {
        let rest = (program.len() - i - 1) as u64;
        let (code, k) = (ins.code, ins.k);
        let ok = code <= 0xff
            && match class(code) {
                LD => match mode(code) {
                    // A negative offset must be one of the kernel's ancillary fields.
                    ABS if k >= 0x8000_0000 => k >= SKF_AD_OFF && k - SKF_AD_OFF <= 60 && k % 4 == 0,
                    ABS | IND => size(code) != 0x18,
                    IMM | LEN => size(code) == W,
                    MEM => size(code) == W && k < MEMWORDS,
                    _ => false,
                },
                LDX => {
                    matches!((mode(code), size(code)), (IMM | LEN, W) | (MSH, B))
                        || (mode(code), size(code)) == (MEM, W) && k < MEMWORDS
                }
                ST | STX => code & !0x07 == 0 && k < MEMWORDS,
                ALU => match op(code) {
                    0x30 | 0x90 => src(code) == X || k != 0,
                    0x60 | 0x70 => src(code) == X || k < 32,
                    0x80 => src(code) == K,
                    o => o <= 0xa0,
                },
                JMP => match op(code) {
                    JA => code == JMP && u64::from(k) < rest,
                    0x10..=0x40 => u64::from(ins.jt) < rest && u64::from(ins.jf) < rest,
                    _ => false,
                },
                RET => code == RET | K || code == RET | RET_A,
                _ => code == MISC || code == MISC | 0x80,
            };
        if !ok {
            return Err(format!("instruction {i} ({code:#x} {} {} {k:#x}) is not one it accepts", ins.jt, ins.jf));
        }
    }
    if class(program[program.len() - 1].code) != RET {
        return Err("it does not end with a return".into());
    }
    Ok(())
}

/// Hand-built packets, network header first, for tests of filters.
#[cfg(test)]
pub mod testing {
    use super::Aux;

    pub struct Pkt {
        pub name: &'static str,
        pub bytes: Vec<u8>,
        pub aux: Aux,
    }

    fn transport(proto: u8, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
        let mut t = [sport.to_be_bytes(), dport.to_be_bytes()].concat();
        if proto == 6 {
            t.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            t.extend([0, 8, 0, 0]);
        }
        t
    }

    /// IPv4 (with `opts` words of options and a fragment offset) then TCP (6) or UDP (17).
    pub fn v4(
        name: &'static str,
        proto: u8,
        ends: ([u8; 4], u16, [u8; 4], u16),
        flags: u8,
        opts: u8,
        frag: u16,
    ) -> Pkt {
        let t = transport(proto, ends.1, ends.3, flags);
        let hl = 20 + 4 * usize::from(opts);
        let total = ((hl + t.len()) as u16).to_be_bytes();
        let mut b = vec![0x45 + opts, 0, total[0], total[1], 0, 1];
        b.extend(frag.to_be_bytes());
        b.extend([64, proto, 0, 0]);
        b.extend(ends.0);
        b.extend(ends.2);
        b.resize(hl, 1); // NOP options
        b.extend(t);
        Pkt { name, bytes: b, aux: Aux { protocol: 0x0800, ..Aux::default() } }
    }

    pub fn v6(name: &'static str, proto: u8, sport: u16, dport: u16, flags: u8) -> Pkt {
        let t = transport(proto, sport, dport, flags);
        let mut b = vec![0x60, 0, 0, 0];
        b.extend((t.len() as u16).to_be_bytes());
        b.extend([proto, 64]);
        b.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0; 11]).chain(&[2]));
        b.extend([0x20, 0x01, 0x0d, 0xb8].iter().chain(&[0; 11]).chain(&[1]));
        b.extend(t);
        Pkt { name, bytes: b, aux: Aux { protocol: 0x86dd, ..Aux::default() } }
    }

    pub const A: [u8; 4] = [10, 0, 0, 2];
    pub const S: [u8; 4] = [10, 0, 0, 1];
    pub const H1: [u8; 4] = [10, 1, 1, 1];
    pub const SYN: u8 = 0x02;
    pub const ACK: u8 = 0x10;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(code: u16, jt: u8, jf: u8, k: u32) -> BpfInsn {
        BpfInsn { code, jt, jf, k }
    }

    #[test]
    fn loads_are_big_endian_and_bounded() {
        let p = [0x12, 0x34, 0x56, 0x78, 0x9a];
        let prog = |code| [ins(LD | code | ABS, 0, 0, 1), ins(RET | RET_A, 0, 0, 0)];
        assert_eq!(run(&prog(W), &p, &Aux::default()), 0x3456789a);
        assert_eq!(run(&prog(H), &p, &Aux::default()), 0x3456);
        assert_eq!(run(&prog(B), &p, &Aux::default()), 0x34);
        assert_eq!(run(&prog(W), &p[..4], &Aux::default()), 0, "a load past the end rejects");
    }

    #[test]
    fn ancillary_loads_read_aux() {
        let aux = Aux { protocol: 0x86dd, pkttype: 4, ifindex: 7 };
        for (field, want) in [(SKF_AD_PROTOCOL, 0x86dd), (SKF_AD_PKTTYPE, 4), (SKF_AD_IFINDEX, 7)] {
            let prog = [ins(LD | H | ABS, 0, 0, SKF_AD_OFF + field), ins(RET | RET_A, 0, 0, 0)];
            assert_eq!(run(&prog, &[], &aux), want);
        }
        let unknown = [ins(LD | W | ABS, 0, 0, SKF_AD_OFF + 60), ins(RET | K, 0, 0, 1)];
        assert_eq!(run(&unknown, &[], &aux), 0);
    }

    #[test]
    fn msh_ind_alu_and_scratch() {
        // IPv4 header length 24 (IHL 6); the word at 24 is 0x0050_1234.
        let mut p = vec![0x46u8; 28];
        p[24..28].copy_from_slice(&[0x00, 0x50, 0x12, 0x34]);
        let prog = [
            ins(LDX | B | MSH, 0, 0, 0),
            ins(LD | H | IND, 0, 0, 0),
            ins(ST, 0, 0, 3),
            ins(LD | IMM, 0, 0, 0),
            ins(LD | MEM, 0, 0, 3),
            ins(ALU | ADD | K, 0, 0, 1),
            ins(RET | RET_A, 0, 0, 0),
        ];
        assert_eq!(run(&prog, &p, &Aux::default()), 0x51);
    }

    #[test]
    fn division_by_zero_and_bad_jumps_reject() {
        let div = [ins(LD | IMM, 0, 0, 5), ins(ALU | 0x30 | X, 0, 0, 0), ins(RET | K, 0, 0, 9)];
        assert_eq!(run(&div, &[], &Aux::default()), 0);
        let past_end = [ins(JMP | JA, 0, 0, 5), ins(RET | K, 0, 0, 9)];
        assert_eq!(run(&past_end, &[], &Aux::default()), 0);
        let backwards = [ins(JMP | JA, 0, 0, u32::MAX), ins(RET | K, 0, 0, 9)];
        assert_eq!(run(&backwards, &[], &Aux::default()), 0);
        assert_eq!(run(&[], &[], &Aux::default()), 0);
    }

    #[test]
    fn check_refuses_what_the_kernel_would() {
        let ret = ins(RET | K, 0, 0, 1);
        assert_eq!(check(&[ins(LD | H | ABS, 0, 0, SKF_AD_OFF + SKF_AD_PROTOCOL), ret]), Ok(()));
        for (bad, why) in [
            (vec![], "empty"),
            (vec![ins(LD | IMM, 0, 0, 1)], "no return at the end"),
            (vec![ins(JMP | JA, 0, 0, u32::MAX), ret], "a backward jump"),
            (vec![ins(JMP | 0x10 | K, 1, 0, 0), ret], "a jump past the end"),
            (vec![ins(ST, 0, 0, MEMWORDS), ret], "scratch word 16"),
            (vec![ins(ALU | 0x30 | K, 0, 0, 0), ret], "division by the constant 0"),
            (vec![ins(LD | W | ABS, 0, 0, SKF_AD_OFF + 2), ret], "a misaligned ancillary field"),
            (vec![ins(LDX | W | ABS, 0, 0, 0), ret], "ldx with an absolute offset"),
            (vec![ret; MAXINSNS + 1], "too long"),
        ] {
            assert!(check(&bad).is_err(), "{why}");
        }
    }

    #[test]
    fn conditional_jumps() {
        // A = 10; jgt #5 -> ret 1 else ret 2.
        let prog =
            [ins(LD | IMM, 0, 0, 10), ins(JMP | 0x20 | K, 0, 1, 5), ins(RET | K, 0, 0, 1), ins(RET | K, 0, 0, 2)];
        assert_eq!(run(&prog, &[], &Aux::default()), 1);
        let prog =
            [ins(LD | IMM, 0, 0, 10), ins(JMP | 0x40 | K, 0, 1, 4), ins(RET | K, 0, 0, 1), ins(RET | K, 0, 0, 2)];
        assert_eq!(run(&prog, &[], &Aux::default()), 2);
    }
}
