//! Writing the file format of Python's `torch.save` (PyTorch >= 1.6): a zip archive (entries
//! stored, not compressed) with `archive/data.pkl`, a protocol-2 pickle of the object, and one raw
//! little-endian storage per tensor under `archive/data/N`. The object is `{group: OrderedDict
//! {key: tensor}, "epoch": int}`, built only from what `torch.load(weights_only=True)` (the
//! default since PyTorch 2.6) accepts: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`
//! and `torch.FloatStorage`. Reading goes through the pytorch-reader crate.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// A protocol-2 pickle, written opcode by opcode.
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, op: u8) {
        self.0.push(op);
    }
    fn global(&mut self, module: &str, name: &str) {
        self.op(b'c');
        self.0.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }
    fn string(&mut self, s: &str) {
        self.op(b'X'); // BINUNICODE
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn int(&mut self, v: i64) {
        match i32::try_from(v) {
            Ok(v) => {
                self.op(b'J'); // BININT
                self.0.extend_from_slice(&v.to_le_bytes());
            }
            Err(_) => {
                self.op(0x8a); // LONG1
                self.op(8);
                self.0.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    fn tuple_of(&mut self, values: &[i64]) {
        self.op(b'(');
        for &v in values {
            self.int(v);
        }
        self.op(b't');
    }
    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.op(b')');
        self.op(b'R');
    }
    /// `_rebuild_tensor_v2(storage, 0, shape, strides, False, OrderedDict())` of storage `key`.
    fn tensor(&mut self, key: usize, shape: &[usize]) {
        let numel: usize = shape.iter().product();
        let mut strides = vec![1i64; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * shape[d + 1] as i64;
        }
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.op(b'(');
        // the persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)
        self.op(b'(');
        self.string("storage");
        self.global("torch", "FloatStorage");
        self.string(&key.to_string());
        self.string("cpu");
        self.int(numel as i64);
        self.op(b't');
        self.op(b'Q'); // BINPERSID
        self.int(0);
        self.tuple_of(&shape.iter().map(|&d| d as i64).collect::<Vec<_>>());
        self.tuple_of(&strides);
        self.op(0x89); // NEWFALSE: requires_grad
        self.ordered_dict(); // backward hooks
        self.op(b't');
        self.op(b'R');
    }
}

/// One tensor to save: group, key within the group, shape, row-major values.
pub type Entry = (String, String, Vec<usize>, Vec<f32>);

/// Writes `{group: {key: tensor}, "epoch": epoch}` at `path` (groups in order of first appearance).
pub fn save(path: &Path, tensors: &[Entry], epoch: i64) -> Result<()> {
    for (g, k, shape, v) in tensors {
        if shape.iter().product::<usize>() != v.len() {
            bail!("{g}.{k}: {} values for shape {shape:?}", v.len());
        }
    }
    let mut groups: Vec<&str> = Vec::new();
    for (g, ..) in tensors {
        if !groups.contains(&g.as_str()) {
            groups.push(g);
        }
    }
    let mut p = Pickle(vec![0x80, 2]); // PROTO 2
    p.op(b'}');
    p.op(b'(');
    for g in &groups {
        p.string(g);
        p.ordered_dict();
        p.op(b'(');
        for (i, (_, k, shape, _)) in tensors.iter().enumerate().filter(|(_, t)| t.0 == *g) {
            p.string(k);
            p.tensor(i, shape);
        }
        p.op(b'u');
    }
    p.string("epoch");
    p.int(epoch);
    p.op(b'u');
    p.op(b'.');

    let zipped = || -> zip::result::ZipResult<Vec<u8>> {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        // storages 64-byte aligned, as torch.save writes them (mmap-friendly)
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .with_alignment(64);
        z.start_file("archive/data.pkl", opts)?;
        z.write_all(&p.0)?;
        z.start_file("archive/byteorder", opts)?;
        z.write_all(b"little")?;
        for (i, (.., values)) in tensors.iter().enumerate() {
            z.start_file(format!("archive/data/{i}"), opts)?;
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            z.write_all(&bytes)?;
        }
        z.start_file("archive/version", opts)?;
        z.write_all(b"3\n")?;
        Ok(z.finish()?.into_inner())
    };
    let bytes = zipped().with_context(|| format!("cannot write {}", path.display()))?;
    // through a temporary file and a rename, like every file brainssl writes
    brainssl_scan::atomic_write(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read back with an independent reader of the format (pytorch-reader).
    #[test]
    fn what_is_saved_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pth.tar");
        let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
        save(
            &p,
            &[
                ("encoder".into(), "module.w".into(), vec![2, 3], a.clone()),
                ("predictor".into(), "b".into(), vec![1], vec![7.0]),
            ],
            3_000_000_000,
        )
        .unwrap();
        let r = pytorch_reader::PytorchReader::new(&p).unwrap();
        let read = |k: &str| {
            let t = r.get(k).unwrap();
            let v: Vec<f32> = t
                .read()
                .unwrap()
                .chunks_exact(4)
                .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (t.shape().to_vec(), v)
        };
        assert_eq!(read("encoder.module.w"), (vec![2, 3], a));
        assert_eq!(read("predictor.b"), (vec![1], vec![7.0]));
        assert_eq!(r.len(), 2);
        let e = save(&p, &[("g".into(), "k".into(), vec![2], vec![1.0])], 0).unwrap_err();
        assert!(e.to_string().contains("1 values for shape [2]"), "{e}");
    }
}
