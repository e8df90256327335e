//! The BOREx search space: every (row, column, half-width) on the input grid.

use serde::Serialize;

/// Candidates `(r, q, s)` for `r < height`, `q < width`, `s ∈ sizes`, indexed
/// `(size_index · height + r) · width + q` on every backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateGrid {
    pub height: u32,
    pub width: u32,
    pub sizes: Vec<u32>,
}

impl CandidateGrid {
    /// The reference sizes [30, 45, 60, 75] at 224×224, scaled to the input's short side.
    pub fn reference(height: u32, width: u32) -> Self {
        let scale = height.min(width) as f64 / 224.0;
        let sizes = [30.0, 45.0, 60.0, 75.0].iter().map(|s: &f64| ((s * scale).round() as u32).max(1)).collect();
        Self { height, width, sizes }
    }

    pub fn len(&self) -> usize {
        self.height as usize * self.width as usize * self.sizes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn pixels(&self) -> usize {
        self.height as usize * self.width as usize
    }

    /// (row, column, size index) of a candidate index.
    pub fn decode(&self, idx: usize) -> (u32, u32, usize) {
        let (w, h) = (self.width as usize, self.height as usize);
        ((idx / w % h) as u32, (idx % w) as u32, idx / (w * h))
    }

    pub fn encode(&self, r: u32, q: u32, size_index: usize) -> usize {
        (size_index * self.height as usize + r as usize) * self.width as usize + q as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_grid_has_200704_candidates() {
        let g = CandidateGrid::reference(224, 224);
        assert_eq!(g.sizes, vec![30, 45, 60, 75]);
        assert_eq!(g.len(), 200_704);
        let idx = g.encode(17, 200, 3);
        assert_eq!(g.decode(idx), (17, 200, 3));
        assert_eq!(CandidateGrid::reference(448, 600).sizes, vec![60, 90, 120, 150]);
    }
}
