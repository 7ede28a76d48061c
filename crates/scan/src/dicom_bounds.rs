//! A walk over a DICOM file's element headers before the DICOM library parses it: every defined
//! element length must fit in what is left of its enclosing item (or the file), so a length of
//! 0xFFFFFFF0 in a 10 KB file is refused here instead of becoming a 4 GB allocation there. The walk
//! reads headers only (tag, VR, length) and descends into sequences and items.

/// Nested sequences deeper than this are refused (a crafted file could nest without end).
const MAX_DEPTH: usize = 64;
const UNDEFINED: u32 = 0xFFFF_FFFF;

struct Walk<'a> {
    b: &'a [u8],
    explicit: bool,
}

/// Whether an explicit-VR header has 2 reserved bytes and a 32-bit length: every VR but the short
/// ones, unknown codes included (a parser reads an unknown VR as UN, with the long form: found by
/// fuzzing, where bytes 00 00 as a VR hid a 4 GB length from a walk that read them as short).
fn long_vr(vr: &[u8]) -> bool {
    !matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// Bytes per value of the binary VRs. The library reads ⌊len / unit⌋ values and so consumes fewer
/// bytes than the length says when it is not a multiple: from there on it reads the file out of step
/// with this walk (found by fuzzing: a US of length 21331 hid a 4 GB length one byte further on).
/// DICOM requires even lengths, so such an element is corruption, refused here.
fn value_unit(vr: &[u8]) -> usize {
    match vr {
        b"US" | b"SS" | b"OW" => 2,
        b"UL" | b"SL" | b"FL" | b"AT" | b"OF" | b"OL" => 4,
        b"FD" | b"OD" | b"SV" | b"UV" | b"OV" => 8,
        _ => 1,
    }
}

/// The VR the library gives an element of an implicit-VR data set: OW for pixel and overlay data,
/// else the dictionary's (its "relaxed" choice where the standard allows two), else UN.
fn implicit_vr(group: u16, elem: u16) -> [u8; 2] {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
    if (group, elem) == (0x7FE0, 0x0010) || (group >> 8 == 0x60 && elem == 0x3000) {
        return *b"OW";
    }
    dicom_dictionary_std::StandardDataDictionary
        .by_tag(dicom_core::Tag(group, elem))
        .map_or(*b"UN", |e| e.vr().relaxed().to_bytes())
}

impl Walk<'_> {
    fn u16_at(&self, o: usize) -> Option<u16> {
        self.b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32_at(&self, o: usize) -> Option<u32> {
        self.b
            .get(o..o + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Elements from `pos` to `end` (or to an item delimiter); returns where it stopped.
    fn dataset(&self, mut pos: usize, end: usize, depth: usize) -> Result<usize, String> {
        if depth > MAX_DEPTH {
            return Err(format!("sequences nested deeper than {MAX_DEPTH}"));
        }
        while pos + 8 <= end {
            let (group, elem) = (self.u16_at(pos).unwrap_or(0), self.u16_at(pos + 2).unwrap_or(0));
            if group == 0xFFFE {
                // an item delimiter ends an undefined-length item's data set; any other item tag,
                // or one outside an item, is out of place (the library would read on out of step
                // with this walk: found by fuzzing, (FFFE,ADFF) hid a 4 GB length further on)
                if elem == 0xE00D && depth > 0 {
                    return Ok(pos + 8);
                }
                return Err(format!("({group:04X},{elem:04X}) is out of place in a data set"));
            }
            if (group, elem) == (0, 0) {
                // a run of zeros: empty (0000,0000) elements, walked in one step (walking them one by
                // one while looking ahead was quadratic: a fuzzer input took 9 s); zeros to the end
                // are padding after the data set (some archives write it; the reader cuts it off)
                let Some(nz) = self.b[pos..end].iter().position(|&x| x != 0) else {
                    return Ok(end);
                };
                let h = if self.explicit { 12 } else { 8 };
                if nz >= h {
                    pos += h * (nz / h);
                    continue;
                }
            }
            let (vr, len, header): ([u8; 2], u32, usize) = if self.explicit {
                let vr = [self.b[pos + 4], self.b[pos + 5]];
                if long_vr(&vr) {
                    (vr, self.u32_at(pos + 8).ok_or("a truncated element header")?, 12)
                } else {
                    (vr, self.u16_at(pos + 6).unwrap_or(0) as u32, 8)
                }
            } else {
                (implicit_vr(group, elem), self.u32_at(pos + 4).unwrap_or(0), 8)
            };
            let vr = &vr;
            pos += header;
            let is_sq = vr == b"SQ" || (len == UNDEFINED && vr != b"OB" && vr != b"OW");
            if len == UNDEFINED {
                pos = if (group, elem) == (0x7FE0, 0x0010) && !is_sq {
                    self.fragments(pos, end)?
                } else {
                    self.sequence(pos, end, depth + 1)?
                };
                continue;
            }
            let len = len as usize;
            if len > end - pos.min(end) {
                return Err(format!(
                    "element ({group:04X},{elem:04X}) claims {len} bytes, but only {} remain",
                    end.saturating_sub(pos)
                ));
            }
            let unit = value_unit(vr);
            if !len.is_multiple_of(unit) {
                return Err(format!(
                    "element ({group:04X},{elem:04X}) {} has length {len}, not a multiple of its {unit}-byte values",
                    String::from_utf8_lossy(vr)
                ));
            }
            if is_sq {
                self.sequence(pos, pos + len, depth + 1)?;
            }
            pos += len;
        }
        Ok(pos)
    }

    /// Items of a sequence from `pos`, up to `end` or the sequence delimiter.
    fn sequence(&self, mut pos: usize, end: usize, depth: usize) -> Result<usize, String> {
        while pos + 8 <= end {
            let (group, elem) = (self.u16_at(pos).unwrap_or(0), self.u16_at(pos + 2).unwrap_or(0));
            let len = self.u32_at(pos + 4).unwrap_or(0);
            pos += 8;
            match (group, elem) {
                (0xFFFE, 0xE0DD) => return Ok(pos),
                (0xFFFE, 0xE000) if len == UNDEFINED => pos = self.dataset(pos, end, depth)?,
                (0xFFFE, 0xE000) => {
                    let len = len as usize;
                    if len > end - pos.min(end) {
                        return Err(format!(
                            "a sequence item claims {len} bytes, but only {} remain",
                            end.saturating_sub(pos)
                        ));
                    }
                    self.dataset(pos, pos + len, depth)?;
                    pos += len;
                }
                _ => return Err(format!("({group:04X},{elem:04X}) where a sequence item was expected")),
            }
        }
        Ok(pos)
    }

    /// Fragments of encapsulated pixel data, up to the sequence delimiter.
    fn fragments(&self, mut pos: usize, end: usize) -> Result<usize, String> {
        while pos + 8 <= end {
            let (group, elem) = (self.u16_at(pos).unwrap_or(0), self.u16_at(pos + 2).unwrap_or(0));
            let len = self.u32_at(pos + 4).unwrap_or(0) as usize;
            pos += 8;
            if (group, elem) == (0xFFFE, 0xE0DD) {
                return Ok(pos);
            }
            if len > end - pos.min(end) {
                return Err(format!(
                    "a pixel data fragment claims {len} bytes, but only {} remain",
                    end.saturating_sub(pos)
                ));
            }
            pos += len;
        }
        Ok(pos)
    }
}

/// Checks the element lengths of a Part 10 file (`bytes` whole); files without the "DICM"
/// preamble, big-endian and deflated ones are left to the library.
pub fn check_lengths(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 132 || &bytes[128..132] != b"DICM" {
        return Ok(());
    }
    // the file meta group is always explicit VR little endian
    let meta = Walk {
        b: bytes,
        explicit: true,
    };
    let mut pos = 132;
    let mut syntax = String::new();
    while pos + 8 <= bytes.len() && meta.u16_at(pos) == Some(0x0002) {
        let elem = meta.u16_at(pos + 2).unwrap_or(0);
        let vr = &bytes[pos + 4..pos + 6];
        let (len, header) = if long_vr(vr) {
            (meta.u32_at(pos + 8).ok_or("a truncated file meta header")? as usize, 12)
        } else {
            (meta.u16_at(pos + 6).unwrap_or(0) as usize, 8)
        };
        pos += header;
        if len > bytes.len() - pos.min(bytes.len()) {
            return Err(format!(
                "file meta element (0002,{elem:04X}) claims {len} bytes, but only {} remain",
                bytes.len() - pos
            ));
        }
        if elem == 0x0010 {
            syntax = String::from_utf8_lossy(&bytes[pos..pos + len])
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
        pos += len;
    }
    let explicit = match syntax.as_str() {
        "1.2.840.10008.1.2" => false,
        "1.2.840.10008.1.2.2" | "1.2.840.10008.1.2.1.99" => return Ok(()),
        _ => true,
    };
    Walk { b: bytes, explicit }.dataset(pos, bytes.len(), 0).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(tag.0.to_le_bytes());
        v.extend(tag.1.to_le_bytes());
        v.extend(vr);
        if long_vr(vr) {
            v.extend([0, 0]);
            v.extend((value.len() as u32).to_le_bytes());
        } else {
            v.extend((value.len() as u16).to_le_bytes());
        }
        v.extend(value);
        v
    }

    /// Preamble, a meta group naming explicit VR little endian, a sequence with one item, pixels.
    fn file() -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b.extend(b"DICM");
        b.extend(el((2, 0x10), b"UI", b"1.2.840.10008.1.2.1\0"));
        let item = [el((0x0008, 0x0100), b"SH", b"T1"), el((0x0008, 0x0102), b"SH", b"XX")].concat();
        let mut seq_value = Vec::new();
        seq_value.extend(0xFFFEu16.to_le_bytes());
        seq_value.extend(0xE000u16.to_le_bytes());
        seq_value.extend((item.len() as u32).to_le_bytes());
        seq_value.extend(&item);
        b.extend(el((0x0008, 0x1140), b"SQ", &seq_value));
        b.extend(el((0x0028, 0x0010), b"US", &2u16.to_le_bytes()));
        b.extend(el((0x7FE0, 0x0010), b"OW", &[1, 0, 2, 0, 3, 0, 4, 0]));
        b
    }

    #[test]
    fn sound_files_pass_and_lengths_beyond_the_file_are_refused() {
        let good = file();
        check_lengths(&good).unwrap();
        // zero padding after the pixel data (some archives write it), of any length
        for n in [8, 20, 64] {
            check_lengths(&[good.clone(), vec![0; n]].concat()).unwrap();
        }
        // the pixel data length set to 0xFFFFFFF0
        let mut bad = good.clone();
        let at = bad.len() - 8 - 4;
        bad[at..at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let e = check_lengths(&bad).unwrap_err();
        assert!(e.contains("(7FE0,0010) claims 4294967280 bytes"), "{e}");
        // an item inside the sequence that claims more than the sequence holds
        let mut bad = good.clone();
        let item_len_at = bad.windows(4).position(|w| w == [0xFE, 0xFF, 0x00, 0xE0]).unwrap() + 4;
        bad[item_len_at..item_len_at + 4].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(check_lengths(&bad).unwrap_err().contains("sequence item claims"));
        // an unknown VR (here 00 00) has the long form, so its 32-bit length is checked (fuzzer find)
        let unknown = [
            good.clone(),
            vec![0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xF6, 1, 2, 3],
        ]
        .concat();
        assert!(check_lengths(&unknown).unwrap_err().contains("claims 4127195136 bytes"));
        // a long run of zeros before junk is walked in one step (it was quadratic: 9 s on 760 KB)
        let mut zeros = [good.clone(), vec![0; 600_000]].concat();
        zeros.extend([0x10, 0x00, 0x10, 0x00, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0x7F]);
        assert!(check_lengths(&zeros).unwrap_err().contains("claims"));
        // junk appended: a header that claims gigabytes
        let junk = [
            good,
            vec![0x10, 0x00, 0x10, 0x00, b'O', b'B', 0, 0, 0xF0, 0xFF, 0xFF, 0x7F, 1, 2],
        ]
        .concat();
        assert!(check_lengths(&junk).unwrap_err().contains("claims"));
    }

    /// A binary value whose length is not a multiple of its value size (the library would read one
    /// byte less and parse the rest of the file out of step: a fuzzer input allocated 4.3 GB so).
    #[test]
    fn binary_values_must_fill_whole_values() {
        let mut odd = file();
        let at = odd.len() - 20; // before the pixel data element
        odd.splice(at..at, el((0x0028, 0x0011), b"US", &[1, 0, 2]));
        let e = check_lengths(&odd).unwrap_err();
        assert!(e.contains("(0028,0011) US has length 3"), "{e}");
        let mut fine = file();
        fine.splice(at..at, el((0x0028, 0x0011), b"US", &[64, 0]));
        check_lengths(&fine).unwrap();
        // implicit VR: the VR comes from the dictionary, (0028,0011) Columns is US
        assert_eq!(&implicit_vr(0x0028, 0x0011), b"US");
        assert_eq!(&implicit_vr(0x7FE0, 0x0010), b"OW");
        assert_eq!(&implicit_vr(0x0009, 0x1234), b"UN");
    }

    /// Item tags belong inside sequences: one in the top-level data set is refused.
    #[test]
    fn item_tags_outside_sequences_are_refused() {
        for elem in [0xADFFu16, 0xE00D, 0xE000] {
            let mut f = file();
            let at = f.len() - 20;
            let mut tag = vec![0xFE, 0xFF];
            tag.extend(elem.to_le_bytes());
            tag.extend(0u32.to_le_bytes());
            f.splice(at..at, tag);
            let e = check_lengths(&f).unwrap_err();
            assert!(e.contains(&format!("(FFFE,{elem:04X}) is out of place")), "{e}");
        }
    }
}
