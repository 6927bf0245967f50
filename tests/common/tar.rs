//! Tar streams written byte by byte, for archives that no well-behaved writer makes
//! (hostile names, links, devices, damaged headers).

pub const BLOCK: usize = 512;

/// One tar header block with raw fields: `name` goes into the 100-byte name field as is.
pub fn header(name: &[u8], kind: tar::EntryType, size: u64, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        assert!(name.len() <= gnu.name.len() && link.len() <= gnu.linkname.len());
        gnu.name[..name.len()].copy_from_slice(name);
        gnu.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// Appends a header and its data, padded to a whole block.
pub fn push(tar: &mut Vec<u8>, h: &tar::Header, data: &[u8]) {
    tar.extend_from_slice(h.as_bytes());
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(BLOCK) * BLOCK, 0);
}

pub fn regular(tar: &mut Vec<u8>, name: &str, data: &[u8]) {
    push(tar, &header(name.as_bytes(), tar::EntryType::Regular, data.len() as u64, b""), data);
}

/// Closes a tar stream with its end-of-archive marker.
pub fn end(tar: &mut Vec<u8>) {
    tar.extend_from_slice(&[0; 2 * BLOCK]);
}
