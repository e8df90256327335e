//! Just enough of the ONNX protobuf to find a classifier's head: nodes (op
//! type, inputs, outputs, integer attributes) and float initializers. ONNX
//! Runtime does not expose initializer values, and the CAM family needs the
//! final linear layer's weights.

use crate::error::{BorexError, Result};
use ndarray::Array2;
use std::collections::HashMap;
use std::path::Path;

/// One node of the ONNX graph, as far as borex reads it.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// The operator (`Gemm`, `MatMul`, …).
    pub op_type: String,
    /// Its input tensors' names.
    pub inputs: Vec<String>,
    /// Its output tensors' names.
    pub outputs: Vec<String>,
    /// Its integer attributes (`transB`, …).
    pub int_attrs: HashMap<String, i64>,
}

/// A float32 initializer (weight tensor).
#[derive(Debug, Clone)]
pub struct Initializer {
    /// Its shape.
    pub dims: Vec<i64>,
    /// Its values, row-major.
    pub data: Vec<f32>,
}

/// The parts of an ONNX graph borex reads (to find a classifier's linear head): nodes and float initializers.
#[derive(Debug, Default)]
pub struct Graph {
    /// The nodes, in file order.
    pub nodes: Vec<Node>,
    /// The float32 initializers by name.
    pub initializers: HashMap<String, Initializer>,
}

/// A protobuf field: number and value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    Fixed64,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn next(&mut self) -> Option<Option<(u64, Value<'a>)>> {
        if self.pos >= self.buf.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.pos += 8;
                Value::Fixed64
            }
            2 => {
                let len = self.varint()? as usize;
                let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len())?;
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Value::Bytes(b)
            }
            5 => {
                let b = self.buf.get(self.pos..self.pos + 4)?;
                self.pos += 4;
                Value::Fixed32(u32::from_le_bytes(b.try_into().ok()?))
            }
            _ => return None,
        };
        Some(Some((key >> 3, value)))
    }

    /// Every field, or None when the bytes are not protobuf.
    fn fields(buf: &'a [u8]) -> Option<Vec<(u64, Value<'a>)>> {
        let mut r = Reader::new(buf);
        let mut out = vec![];
        while let Some((n, v)) = r.next()? {
            out.push((n, v));
        }
        Some(out)
    }
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_node(buf: &[u8]) -> Option<Node> {
    let mut node = Node::default();
    for (n, v) in Reader::fields(buf)? {
        match (n, v) {
            (1, Value::Bytes(b)) => node.inputs.push(string(b)),
            (2, Value::Bytes(b)) => node.outputs.push(string(b)),
            (4, Value::Bytes(b)) => node.op_type = string(b),
            (5, Value::Bytes(b)) => {
                let (mut name, mut int) = (String::new(), None);
                for (an, av) in Reader::fields(b)? {
                    match (an, av) {
                        (1, Value::Bytes(s)) => name = string(s),
                        (3, Value::Varint(i)) => int = Some(i as i64),
                        _ => {}
                    }
                }
                if let Some(i) = int {
                    node.int_attrs.insert(name, i);
                }
            }
            _ => {}
        }
    }
    Some(node)
}

fn parse_tensor(buf: &[u8]) -> Option<(String, Option<Initializer>)> {
    let (mut name, mut dims, mut dtype, mut floats, mut raw) = (String::new(), vec![], 0u64, vec![], None);
    for (n, v) in Reader::fields(buf)? {
        match (n, v) {
            (1, Value::Varint(d)) => dims.push(d as i64),
            (1, Value::Bytes(b)) => {
                let mut r = Reader::new(b);
                while r.pos < b.len() {
                    dims.push(r.varint()? as i64);
                }
            }
            (2, Value::Varint(t)) => dtype = t,
            (4, Value::Fixed32(f)) => floats.push(f32::from_bits(f)),
            (4, Value::Bytes(b)) => floats.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()))),
            (8, Value::Bytes(b)) => name = string(b),
            (9, Value::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    // data_type 1 = FLOAT; other types are not needed here.
    if dtype != 1 {
        return Some((name, None));
    }
    let data = match raw {
        Some(b) => b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        None => floats,
    };
    Some((name, Some(Initializer { dims, data })))
}

impl Graph {
    /// Read the graph of the ONNX file at `path` (no ONNX Runtime), or an error naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = crate::limits::read_bounded(path, crate::limits::MAX_MODEL_BYTES, "model")?;
        Self::parse(&bytes).ok_or_else(|| BorexError::model(path, "not an ONNX model (protobuf parse failed)"))
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let graph = Reader::fields(bytes)?.into_iter().find_map(|(n, v)| match (n, v) {
            (7, Value::Bytes(b)) => Some(b),
            _ => None,
        })?;
        let mut g = Graph::default();
        for (n, v) in Reader::fields(graph)? {
            match (n, v) {
                (1, Value::Bytes(b)) => g.nodes.push(parse_node(b)?),
                (5, Value::Bytes(b)) => {
                    if let (name, Some(t)) = parse_tensor(b)? {
                        g.initializers.insert(name, t);
                    }
                }
                _ => {}
            }
        }
        Some(g)
    }

    fn producer(&self, tensor: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.outputs.iter().any(|o| o == tensor))
    }

    /// Follow Identity nodes back to the tensor they copy.
    fn source<'a>(&'a self, mut tensor: &'a str) -> &'a str {
        while let Some(input) = self.producer(tensor).filter(|n| n.op_type == "Identity").and_then(|n| n.inputs.first())
        {
            tensor = input;
        }
        tensor
    }

    /// The name and value of the weight of the Gemm that produces `logits`.
    pub fn linear_weight(&self, logits: &str) -> Option<(String, &Initializer)> {
        let fc = self.producer(logits).filter(|n| n.op_type == "Gemm")?;
        let name = fc.inputs.get(1)?;
        self.initializers.get(name).map(|i| (name.clone(), i))
    }

    /// The weights W (classes × K) and bias of a global-average-pool + linear
    /// head that maps `features` to `logits`, or why there is none.
    /// `overrides` replaces initializer values by name (weights swapped at load time).
    pub fn gap_linear_head(
        &self,
        logits: &str,
        features: &str,
        overrides: &dyn Fn(&str) -> Option<Vec<f32>>,
    ) -> std::result::Result<(Array2<f32>, Vec<f32>), String> {
        let fc = self.producer(logits).ok_or_else(|| format!("no node produces '{logits}'"))?;
        let (w_name, b_name, trans_b, input) = match (fc.op_type.as_str(), fc.inputs.first(), fc.inputs.get(1)) {
            ("Gemm", Some(a), Some(b)) => {
                (b, fc.inputs.get(2), fc.int_attrs.get("transB").copied().unwrap_or(0) == 1, a)
            }
            (other, ..) => return Err(format!("'{logits}' comes from {other}, not a Gemm (linear) layer")),
        };
        let w = self
            .initializers
            .get(w_name)
            .ok_or_else(|| format!("linear weight '{w_name}' is not a float initializer"))?;
        if w.dims.len() != 2 {
            return Err(format!("linear weight '{w_name}' has shape {:?}", w.dims));
        }
        let (r, c) = (w.dims[0] as usize, w.dims[1] as usize);
        let data = overrides(w_name).unwrap_or_else(|| w.data.clone());
        let m = Array2::from_shape_vec((r, c), data).map_err(|e| e.to_string())?;
        let m = if trans_b { m } else { m.reversed_axes().as_standard_layout().to_owned() };
        let bias = b_name
            .and_then(|b| self.initializers.get(b))
            .map(|b| b.data.clone())
            .unwrap_or_else(|| vec![0.0; m.nrows()]);
        // Walk back: Flatten/Reshape ← GlobalAveragePool ← the feature map.
        let mut t = self.source(input);
        while let Some(input) = self
            .producer(t)
            .filter(|n| matches!(n.op_type.as_str(), "Flatten" | "Reshape" | "Squeeze"))
            .and_then(|n| n.inputs.first())
        {
            t = self.source(input);
        }
        let pool = self.producer(t).ok_or_else(|| "the linear layer's input has no producer".to_string())?;
        if pool.op_type != "GlobalAveragePool" {
            return Err(format!("the linear layer is fed by {}, not GlobalAveragePool", pool.op_type));
        }
        if pool.inputs.first().map(|i| self.source(i)) != Some(self.source(features)) {
            return Err(format!("the pooled tensor is not the '{features}' output"));
        }
        Ok((m, bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_garbage() {
        let mut r = Reader::new(&[0x96, 0x01]);
        assert_eq!(r.varint(), Some(150));
        assert!(Graph::parse(b"\xff\xff\xff").is_none());
    }
}
