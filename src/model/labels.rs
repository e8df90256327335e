//! Class labels: a text file with one label per line, or JSON (a list, or an
//! object keyed by class index).

use crate::error::{BorexError, Result};
use std::path::Path;

/// Class labels, by class index.
#[derive(Debug, Clone)]
pub struct Labels(Vec<String>);

impl Labels {
    /// Read labels: one per line, a JSON list, or a JSON object of index → label.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::limits::read_text_bounded(path, crate::limits::MAX_LABELS_BYTES, "labels")?;
        let bad = |reason: String| BorexError::Labels { path: path.into(), reason };
        let names = if path.extension().is_some_and(|e| e == "json") {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            match v {
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .map(|s| s.as_str().map(str::to_string).ok_or_else(|| bad("entries must be strings".into())))
                    .collect::<Result<Vec<_>>>()?,
                serde_json::Value::Object(map) => {
                    let mut names = vec![String::new(); map.len()];
                    for (k, v) in map {
                        let i: usize = k.parse().map_err(|_| bad(format!("key {k:?} is not a class index")))?;
                        let slot = names.get_mut(i).ok_or_else(|| bad(format!("class index {i} out of range")))?;
                        *slot = v.as_str().ok_or_else(|| bad("values must be strings".into()))?.to_string();
                    }
                    names
                }
                _ => return Err(bad("expected a list or an object".into())),
            }
        } else {
            text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
        };
        if names.is_empty() {
            return Err(bad("no labels".into()));
        }
        Ok(Self(names))
    }

    /// Labels given as a list, one per class in class order (a Python `labels=[...]`).
    pub fn from_names(names: Vec<String>) -> Result<Self> {
        if names.is_empty() {
            return Err(BorexError::invalid("labels: the list is empty; give one name per class, or none"));
        }
        Ok(Self(names))
    }

    /// Every label, by class index.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The label of `class`, if there is one.
    pub fn name(&self, class: usize) -> Option<&str> {
        self.0.get(class).map(String::as_str)
    }

    /// The short name: the first comma-separated synonym ("tabby, tabby cat" → "tabby").
    pub fn short_name(&self, class: usize) -> Option<&str> {
        self.name(class).map(|n| n.split(',').next().unwrap_or(n).trim())
    }

    /// Find a class by name: the one class with that synonym (case-insensitive);
    /// a name several classes share ("crane": the bird and the machine) is an
    /// error listing them, and an unknown one lists near matches.
    pub fn find(&self, query: &str) -> Result<usize> {
        let q = query.trim().to_lowercase();
        let exact: Vec<usize> =
            (0..self.0.len()).filter(|&i| self.0[i].split(',').any(|s| s.trim().to_lowercase() == q)).collect();
        match exact.as_slice() {
            [i] => return Ok(*i),
            [_, _, ..] => {
                let list: Vec<String> = exact.iter().map(|&i| format!("{i} ({})", self.0[i])).collect();
                return Err(BorexError::invalid(format!(
                    "class name {query:?} is ambiguous: it names {}; pass the class id",
                    list.join(", ")
                )));
            }
            [] => {}
        }
        let near: Vec<String> = self
            .0
            .iter()
            .enumerate()
            .filter(|(_, n)| n.to_lowercase().contains(&q) || q.contains(&short(n).to_lowercase()))
            .take(5)
            .map(|(i, n)| format!("{i} ({})", short(n)))
            .collect();
        Err(BorexError::invalid(if near.is_empty() {
            format!("unknown class {query:?}")
        } else {
            format!("unknown class {query:?}; near matches: {}", near.join(", "))
        }))
    }
}

fn short(name: &str) -> &str {
    name.split(',').next().unwrap_or(name).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_labels_agree() {
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("l.txt");
        let json = dir.path().join("l.json");
        std::fs::write(&txt, "tench, Tinca tinca\ngoldfish\n\ntabby, tabby cat\n").unwrap();
        std::fs::write(&json, r#"{"0": "tench, Tinca tinca", "2": "tabby, tabby cat", "1": "goldfish"}"#).unwrap();
        let (a, b) = (Labels::load(&txt).unwrap(), Labels::load(&json).unwrap());
        assert_eq!(a.len(), 3);
        assert_eq!(a.0, b.0);
        assert_eq!(a.short_name(2), Some("tabby"));
        assert_eq!(a.find("Tabby Cat").unwrap(), 2);
        let err = a.find("tabb").unwrap_err().to_string();
        assert!(err.contains("near matches: 2 (tabby)"), "{err}");
        let cranes = Labels(vec!["crane".into(), "goldfish".into(), "crane, derrick".into()]);
        let err = cranes.find("Crane").unwrap_err().to_string();
        assert!(err.contains("ambiguous") && err.contains("0 (crane), 2 (crane, derrick)"), "{err}");
        assert_eq!(cranes.find("derrick").unwrap(), 2);
    }
}
