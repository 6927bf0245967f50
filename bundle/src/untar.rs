//! Tar headers read in place, in a buffer the caller fills as it decompresses.
//!
//! Why not the tar crate here (the writer uses it): it reads through `io::Read`, so every
//! header and every entry's data is copied out of the decompressed stream, one call per
//! entry. A busy host's bundle has ~40,000 entries; reading them that way cost more than
//! decompressing the whole archive. Here the caller keeps the decompressed stream in one
//! buffer and asks this parser, block by block, what comes next; entry data is never
//! touched by the parser.
//!
//! What is understood: POSIX ustar (with its name prefix), GNU tar (long names `L`, long
//! link names `K`, base-256 sizes), PAX extended headers (`path` and `size`; global
//! headers are read past), and old V7 headers. Everything else a header may describe is
//! returned as a [`Step::Member`] of its type for the caller to refuse.

/// The tar block size: headers are one block, data is padded to whole blocks.
pub(crate) const BLOCK: usize = 512;

/// Bytes of headers and metadata records allowed between two file entries: GNU long
/// names, PAX records, directory entries. Without a cap, one such record could claim
/// gigabytes before any per-entry limit applies.
pub(crate) const MAX_METADATA_BYTES: u64 = 1 << 20;

/// What the parser found at the current position.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// At least this many bytes from the position are needed to go on.
    Need(usize),
    /// A metadata record (long name, PAX header) or a directory was read: move the
    /// position on by this many bytes. `dir` names the directory, if it was one.
    Skip { len: usize, dir: Option<Vec<u8>> },
    /// A member's header: its data (`size` bytes) starts one block after the position
    /// and is padded to whole blocks.
    Member { name: Vec<u8>, kind: u8, size: u64, link: Vec<u8> },
    /// The end-of-archive marker (a block of zeros).
    End,
}

/// Why a tar stream was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Error {
    Checksum,
    Field(&'static str),
    /// Too much metadata before the next file; `dir` names the directory entry whose
    /// data it was.
    TooMuchMetadata {
        dir: Option<Vec<u8>>,
    },
    Pax(&'static str),
}

impl Error {
    /// The entry the error is about, when it is one the stream named.
    pub(crate) fn entry(&self) -> Option<&[u8]> {
        match self {
            Error::TooMuchMetadata { dir } => dir.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Checksum => f.write_str("a tar header's checksum does not match: the archive is corrupt"),
            Error::Field(field) => write!(f, "a tar header's {field} field is not a number"),
            Error::TooMuchMetadata { dir } => {
                if let Some(dir) = dir {
                    write!(f, "directory entry {} has data to skip: ", String::from_utf8_lossy(dir))?;
                }
                write!(
                    f,
                    "more than {MAX_METADATA_BYTES} bytes of tar metadata (headers, GNU long names, \
                     PAX records) or skipped data before the next file entry"
                )
            }
            Error::Pax(what) => write!(f, "a PAX extended header is malformed: {what}"),
        }
    }
}

/// Either more bytes are needed, or the stream is refused.
enum NeedOr {
    Need(usize),
    Error(Error),
}

impl From<Error> for NeedOr {
    fn from(e: Error) -> NeedOr {
        NeedOr::Error(e)
    }
}

/// The parser's state between blocks: metadata records that apply to the next member.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    long_name: Option<Vec<u8>>,
    pax_path: Option<Vec<u8>>,
    /// A link's target from a GNU `K` record or a PAX `linkpath`.
    long_link: Option<Vec<u8>>,
    pax_size: Option<u64>,
    /// Metadata bytes read since the last member.
    metadata: u64,
}

/// Data padded to whole blocks.
pub(crate) fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64).saturating_mul(BLOCK as u64)
}

impl Parser {
    /// Reads what starts at `at`, the first byte of a header block. Returns
    /// [`Step::Need`] until `at` holds the header and any metadata record's data; the
    /// parser's state changes only with a step taken.
    pub(crate) fn next(&mut self, at: &[u8]) -> Result<Step, Error> {
        match self.step(at) {
            Ok(step) => Ok(step),
            Err(NeedOr::Need(n)) => Ok(Step::Need(n)),
            Err(NeedOr::Error(e)) => Err(e),
        }
    }

    fn step(&mut self, at: &[u8]) -> Result<Step, NeedOr> {
        if at.len() < BLOCK {
            return Err(NeedOr::Need(BLOCK));
        }
        let h: &[u8; BLOCK] = at[..BLOCK].try_into().expect("one block");
        if h.iter().all(|&b| b == 0) {
            return Ok(Step::End);
        }
        check_sum(h)?;
        let kind = h[156];
        let own_size = size_field(&h[124..136])?;
        if matches!(kind, b'L' | b'K' | b'x' | b'g') {
            let len = self.metadata_len(own_size, at.len())?;
            let data = &at[BLOCK..BLOCK + own_size as usize];
            match kind {
                b'L' => self.long_name = Some(until_nul(data).to_vec()),
                b'K' => self.long_link = Some(until_nul(data).to_vec()),
                b'x' => self.pax(data)?,
                _ => {}
            }
            return Ok(Step::Skip { len, dir: None });
        }
        // A PAX size applies to the member that follows the record.
        let size = self.pax_size.unwrap_or(own_size);
        let last = match (&self.pax_path, &self.long_name) {
            (Some(path), _) => path.last(),
            (None, Some(long)) => long.last(),
            (None, None) => until_nul(&h[..100]).last(),
        };
        let dir = kind == b'5' || (matches!(kind, b'0' | 0) && last == Some(&b'/'));
        let len = if dir {
            match self.metadata_len(size, at.len()) {
                Err(NeedOr::Error(Error::TooMuchMetadata { .. })) => {
                    let name =
                        self.pax_path.clone().or_else(|| self.long_name.clone()).unwrap_or_else(|| header_name(h));
                    return Err(NeedOr::Error(Error::TooMuchMetadata { dir: Some(name) }));
                }
                other => Some(other?),
            }
        } else {
            None
        };
        let name = match (self.long_name.take(), self.pax_path.take()) {
            (_, Some(path)) => path,
            (Some(long), None) => long,
            (None, None) => header_name(h),
        };
        self.pax_size = None;
        let link = self.long_link.take().unwrap_or_else(|| until_nul(&h[157..257]).to_vec());
        match len {
            Some(len) => Ok(Step::Skip { len, dir: Some(name) }),
            None => {
                self.metadata = 0;
                Ok(Step::Member { name, kind, size, link })
            }
        }
    }

    /// Counts a header and its padded data of `size` against the metadata allowance,
    /// once `available` bytes hold them all; until then nothing is counted.
    fn metadata_len(&mut self, size: u64, available: usize) -> Result<usize, NeedOr> {
        let len = padded(size).saturating_add(BLOCK as u64);
        let total = self.metadata.saturating_add(len);
        if total > MAX_METADATA_BYTES {
            return Err(NeedOr::Error(Error::TooMuchMetadata { dir: None }));
        }
        // Under the cap, so it fits a usize.
        let len = len as usize;
        if available < len {
            return Err(NeedOr::Need(len));
        }
        self.metadata = total;
        Ok(len)
    }

    /// PAX records: `"<len> <key>=<value>\n"`, where `len` counts the whole record.
    fn pax(&mut self, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() && data[0] != 0 {
            let space = data.iter().position(|&b| b == b' ').ok_or(Error::Pax("a record has no length"))?;
            let len: usize = std::str::from_utf8(&data[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(Error::Pax("a record's length is not a number"))?;
            if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
                return Err(Error::Pax("a record's length does not match it"));
            }
            let record = &data[space + 1..len - 1];
            let eq = record.iter().position(|&b| b == b'=').ok_or(Error::Pax("a record has no '='"))?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => self.pax_path = Some(value.to_vec()),
                b"linkpath" => self.long_link = Some(value.to_vec()),
                b"size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or(Error::Pax("the size is not a number"))?;
                    self.pax_size = Some(size);
                }
                _ => {}
            }
            data = &data[len..];
        }
        Ok(())
    }
}

/// A member type as people know it, for the error that refuses it.
pub(crate) fn kind_name(kind: u8) -> String {
    match kind {
        b'1' => "Link (hard link)".into(),
        b'2' => "Symlink".into(),
        b'3' => "Char (character device)".into(),
        b'4' => "Block (block device)".into(),
        b'6' => "Fifo".into(),
        b'S' => "GNU sparse".into(),
        b'V' => "GNU volume label".into(),
        b'M' => "GNU multi-volume".into(),
        k if k.is_ascii_graphic() => format!("type '{}'", k as char),
        k => format!("type {k}"),
    }
}

fn until_nul(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// The name field, with the ustar prefix when the header is POSIX ustar.
fn header_name(h: &[u8; BLOCK]) -> Vec<u8> {
    let name = until_nul(&h[..100]);
    let prefix = if &h[257..263] == b"ustar\0" { until_nul(&h[345..500]) } else { b"" };
    if prefix.is_empty() {
        return name.to_vec();
    }
    let mut full = Vec::with_capacity(prefix.len() + 1 + name.len());
    full.extend_from_slice(prefix);
    full.push(b'/');
    full.extend_from_slice(name);
    full
}

/// An octal number field (spaces or NULs around it), or GNU's base-256 form.
fn number(field: &[u8], name: &'static str) -> Result<u64, Error> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] != 0x80 || field.len() > 12 {
            return Err(Error::Field(name));
        }
        let mut n: u64 = 0;
        for &b in &field[1..] {
            n = n.checked_mul(256).and_then(|n| n.checked_add(u64::from(b))).ok_or(Error::Field(name))?;
        }
        return Ok(n);
    }
    let digits = field.iter().skip_while(|&&b| b == b' ' || b == 0);
    let mut n: u64 = 0;
    let mut ended = false;
    for &b in digits {
        match b {
            b'0'..=b'7' if !ended => {
                n = n.checked_mul(8).and_then(|n| n.checked_add(u64::from(b - b'0'))).ok_or(Error::Field(name))?;
            }
            b' ' | 0 => ended = true,
            _ => return Err(Error::Field(name)),
        }
    }
    Ok(n)
}

fn size_field(field: &[u8]) -> Result<u64, Error> {
    number(field, "size")
}

/// The header checksum: the sum of its bytes with the checksum field read as spaces.
/// Old tars summed signed bytes; either sum is accepted, as GNU tar does.
fn check_sum(h: &[u8; BLOCK]) -> Result<(), Error> {
    let stored = number(&h[148..156], "checksum")?;
    let field = &h[148..156];
    let spaces = 8 * u64::from(b' ');
    // Summed whole, then the checksum field taken back out. In u32 (512 bytes sum to at
    // most 130,560), which the compiler vectorizes twice as wide as u64.
    let sum32 = |bytes: &[u8]| bytes.iter().map(|&b| u32::from(b)).sum::<u32>();
    let unsigned = u64::from(sum32(h) - sum32(field));
    if unsigned + spaces == stored {
        return Ok(());
    }
    let signed =
        h.iter().map(|&b| i64::from(b as i8)).sum::<i64>() - field.iter().map(|&b| i64::from(b as i8)).sum::<i64>();
    if signed + spaces as i64 == stored as i64 {
        return Ok(());
    }
    Err(Error::Checksum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every member of `stream` as (name, kind, data), read the way the bundle reader
    /// does, or the first error.
    fn members(stream: &[u8]) -> Result<Vec<(String, u8, Vec<u8>)>, String> {
        let mut p = Parser::default();
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            match p.next(&stream[pos..]).map_err(|e| e.to_string())? {
                Step::Need(n) => return Err(format!("cut short: {n} bytes needed at {pos}")),
                Step::Skip { len, dir } => {
                    if let Some(d) = dir {
                        out.push((String::from_utf8_lossy(&d).into_owned(), b'5', Vec::new()));
                    }
                    pos += len
                }
                Step::End => return Ok(out),
                Step::Member { name, kind, size, .. } => {
                    let start = pos + BLOCK;
                    let end = start + size as usize;
                    if padded(size) > (stream.len() - start) as u64 {
                        return Err("data cut short".into());
                    }
                    let kind = if kind == 0 { b'0' } else { kind };
                    out.push((String::from_utf8_lossy(&name).into_owned(), kind, stream[start..end].to_vec()));
                    pos = start + padded(size) as usize;
                }
            }
        }
    }

    /// The same, read by the tar crate.
    fn members_by_tar_crate(stream: &[u8]) -> Vec<(String, u8, Vec<u8>)> {
        let mut a = tar::Archive::new(stream);
        let mut out = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let kind = e.header().entry_type().as_byte();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            out.push((name.trim_end_matches('/').to_string(), kind, data));
        }
        out
    }

    fn without_slash(mut v: Vec<(String, u8, Vec<u8>)>) -> Vec<(String, u8, Vec<u8>)> {
        for m in &mut v {
            m.0 = m.0.trim_end_matches('/').to_string();
        }
        v
    }

    #[test]
    fn reads_what_the_tar_crate_writes_in_every_header_format() {
        let long = format!("proc/{}/status", "9".repeat(150));
        let big: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let files: Vec<(String, Vec<u8>)> = vec![
            ("manifest.json".into(), b"{}".to_vec()),
            ("proc/loadavg".into(), b"0.1 0.2 0.3 1/2 3\n".to_vec()),
            (long.clone(), b"Name:\tx\n".to_vec()),
            ("empty".into(), Vec::new()),
            ("exactly-one-block".into(), vec![7; BLOCK]),
            ("big".into(), big),
        ];
        for format in ["gnu", "ustar", "pax"] {
            let mut b = tar::Builder::new(Vec::new());
            let mut dir = match format {
                "gnu" => tar::Header::new_gnu(),
                _ => tar::Header::new_ustar(),
            };
            dir.set_entry_type(tar::EntryType::Directory);
            dir.set_size(0);
            dir.set_mode(0o755);
            b.append_data(&mut dir, "proc/", std::io::empty()).unwrap();
            for (name, data) in &files {
                let mut h = match format {
                    "gnu" => tar::Header::new_gnu(),
                    _ => tar::Header::new_ustar(),
                };
                h.set_size(data.len() as u64);
                h.set_mode(0o600);
                if format == "pax" && name.len() > 100 {
                    b.append_pax_extensions([("path", name.as_bytes())]).unwrap();
                    h.set_path("placeholder").unwrap();
                    h.set_cksum();
                    b.append(&h, data.as_slice()).unwrap();
                } else {
                    // ustar: long names go into the prefix field; gnu: an `L` record.
                    b.append_data(&mut h, name, data.as_slice()).unwrap();
                }
            }
            let stream = b.into_inner().unwrap();
            let ours = members(&stream).unwrap_or_else(|e| panic!("{format}: {e}"));
            let mut theirs = members_by_tar_crate(&stream);
            if format == "pax" {
                // The tar crate lists the PAX record itself as an entry.
                theirs.retain(|m| m.1 != b'x');
            }
            assert_eq!(without_slash(ours), theirs, "{format}");
        }
    }

    #[test]
    fn base256_sizes_and_signed_checksums_are_read() {
        let mut h = tar::Header::new_gnu();
        h.set_path("f").unwrap();
        h.set_size(3);
        h.set_cksum();
        let mut block = h.as_bytes().to_vec();
        // Size 3 in GNU base-256.
        block[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        // A byte over 127 in the name makes the signed and unsigned sums differ.
        block[1] = 0xe9;
        let signed: i64 =
            block.iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { i64::from(b as i8) }).sum();
        block[148..156].copy_from_slice(format!("{signed:06o}\0 ").as_bytes());
        block.extend_from_slice(b"abc");
        block.resize(2 * BLOCK, 0);
        block.extend_from_slice(&[0; 2 * BLOCK]);
        let m = members(&block).unwrap();
        assert_eq!(m, vec![("f\u{FFFD}".to_string(), b'0', b"abc".to_vec())]);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        b.append_data(&mut h, format!("{}/x", "d".repeat(120)), &b"data"[..]).unwrap();
        b.append_pax_extensions([("path", &b"p"[..]), ("size", &b"4"[..])]).unwrap();
        b.append_data(&mut h, "y", &b"data"[..]).unwrap();
        let good = b.into_inner().unwrap();
        assert!(members(&good).is_ok());
        // Every byte changed to each of a few values, and every cut: an answer each time.
        for i in 0..good.len().min(4 * BLOCK) {
            for v in [0u8, b'0', b'7', b' ', 0x80, 0xff, b'\n', b'L', b'x'] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = members(&bad);
            }
        }
        for cut in 0..good.len() {
            let _ = members(&good[..cut]);
        }
        let mut bad = good.clone();
        bad[150] ^= 1;
        assert_eq!(members(&bad), Err(Error::Checksum.to_string()));
    }

    #[test]
    fn a_huge_metadata_record_is_refused_from_its_header() {
        let mut h = tar::Header::new_gnu();
        h.set_path("././@LongLink").unwrap();
        h.set_entry_type(tar::EntryType::GNULongName);
        h.set_size(64 << 20);
        h.set_cksum();
        let mut p = Parser::default();
        assert_eq!(p.next(h.as_bytes()), Err(Error::TooMuchMetadata { dir: None }));
        // A small one waits for its data, then applies to the next member.
        h.set_size(2000);
        h.set_cksum();
        let mut p = Parser::default();
        assert_eq!(p.next(h.as_bytes()), Ok(Step::Need(BLOCK + 2048)));
    }

    #[test]
    fn numbers_read_like_tar_writes_them() {
        assert_eq!(number(b"00000000644\0", "x"), Ok(0o644));
        assert_eq!(number(b"     644 \0\0\0", "x"), Ok(0o644));
        assert_eq!(number(b"\0\0\0\0", "x"), Ok(0));
        assert_eq!(number(b"0009", "x"), Err(Error::Field("x")));
        assert_eq!(number(b"12 3", "x"), Err(Error::Field("x")));
        assert_eq!(number(&[0xff; 12], "x"), Err(Error::Field("x")));
        let max = [0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(number(&max, "x"), Ok(u64::MAX));
        assert_eq!(padded(u64::MAX), u64::MAX);
    }
}
