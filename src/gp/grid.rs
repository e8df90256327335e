//! The BOREx search space: every (row, column, half-width) on the input grid,
//! and for clips also every (centre frame t, temporal half-width τ).

use serde::Serialize;

/// Candidates `(r, q, s)` for `r < height`, `q < width`, `s ∈ sizes`, indexed
/// `(plane · height + r) · width + q` on every backend. A plane is one
/// size (`plane = size_index`) or, with a time axis, one (t, τ, size):
/// `plane = (t · spans + span_index) · sizes + size_index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CandidateGrid {
    /// Height of the image the boxes lie in, in pixels.
    pub height: u32,
    /// Its width.
    pub width: u32,
    /// Box half-widths, in pixels.
    pub sizes: Vec<u32>,
    /// Clips: the frames and temporal half-widths of space-time boxes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time: Option<TimeAxis>,
}

/// The time coordinates of a clip's candidates.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TimeAxis {
    /// Frames T (centre frames t < T).
    pub frames: u32,
    /// Temporal half-widths τ: a box covers frames [t − τ, t + τ].
    pub spans: Vec<u32>,
    /// GP units per frame, so the time coordinates share the spatial
    /// length-scale start and bounds (pixels): t and τ enter the GP as t·unit, τ·unit.
    pub unit: f32,
}

impl Eq for TimeAxis {}

impl CandidateGrid {
    /// Every pixel as a box centre, at each of `sizes`.
    pub fn new(height: u32, width: u32, sizes: Vec<u32>) -> Self {
        Self { height, width, sizes, time: None }
    }

    /// The reference sizes [30, 45, 60, 75] at 224×224, scaled to the input's short side.
    pub fn reference(height: u32, width: u32) -> Self {
        let scale = height.min(width) as f64 / 224.0;
        let sizes = [30.0, 45.0, 60.0, 75.0].iter().map(|s: &f64| ((s * scale).round() as u32).max(1)).collect();
        Self::new(height, width, sizes)
    }

    /// GP input dimensions: 3 (row, column, size), or 5 with (t, τ).
    pub fn dims(&self) -> usize {
        if self.time.is_some() {
            5
        } else {
            3
        }
    }

    /// (size, t, τ) planes of H×W candidates.
    pub fn planes(&self) -> usize {
        self.sizes.len() * self.time.as_ref().map_or(1, |t| t.frames as usize * t.spans.len())
    }

    /// Candidates (pixels × sizes).
    pub fn len(&self) -> usize {
        self.pixels() * self.planes()
    }

    /// Whether there are no candidates.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels of the image (height × width).
    pub fn pixels(&self) -> usize {
        self.height as usize * self.width as usize
    }

    /// (row, column, size index) of a candidate index.
    pub fn decode(&self, idx: usize) -> (u32, u32, usize) {
        let (w, h) = (self.width as usize, self.height as usize);
        ((idx / w % h) as u32, (idx % w) as u32, idx / (w * h) % self.sizes.len())
    }

    /// (centre frame, span index) of a candidate index on a grid with a time axis.
    pub fn decode_time(&self, idx: usize) -> (u32, usize) {
        let spans = self.time.as_ref().map_or(1, |t| t.spans.len());
        let tp = idx / self.pixels() / self.sizes.len();
        ((tp / spans) as u32, tp % spans)
    }

    /// The candidate index of centre (r, q) at size `size_index`.
    pub fn encode(&self, r: u32, q: u32, size_index: usize) -> usize {
        (size_index * self.height as usize + r as usize) * self.width as usize + q as usize
    }

    /// The index of (r, q, size, t, span) on a grid with a time axis.
    pub fn encode_time(&self, r: u32, q: u32, size_index: usize, t: u32, span_index: usize) -> usize {
        let spans = self.time.as_ref().map_or(1, |t| t.spans.len());
        let plane = (t as usize * spans + span_index) * self.sizes.len() + size_index;
        (plane * self.height as usize + r as usize) * self.width as usize + q as usize
    }

    /// A plane's box half-width (pixels).
    pub fn plane_size(&self, plane: usize) -> u32 {
        self.sizes[plane % self.sizes.len()]
    }

    /// A plane's GP coordinates after (row, column): \[size\] or \[size, t·unit, τ·unit\].
    pub fn plane_coords(&self, plane: usize) -> Vec<f32> {
        let s = self.plane_size(plane) as f32;
        match &self.time {
            None => vec![s],
            Some(ax) => {
                let tp = plane / self.sizes.len();
                let (t, span) = (tp / ax.spans.len(), ax.spans[tp % ax.spans.len()]);
                vec![s, t as f32 * ax.unit, span as f32 * ax.unit]
            }
        }
    }

    /// Every plane's box half-width, in plane order.
    pub fn plane_sizes(&self) -> Vec<u32> {
        (0..self.planes()).map(|p| self.plane_size(p)).collect()
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

    #[test]
    fn time_grid_round_trips() {
        let g = CandidateGrid {
            time: Some(TimeAxis { frames: 5, spans: vec![0, 2], unit: 4.0 }),
            ..CandidateGrid::new(6, 7, vec![1, 3, 4])
        };
        assert_eq!((g.dims(), g.planes(), g.len()), (5, 30, 30 * 42));
        let mut seen = vec![false; g.len()];
        for t in 0..5 {
            for si in 0..3 {
                for sp in 0..2 {
                    let idx = g.encode_time(4, 5, si, t, sp);
                    assert!(!seen[idx]);
                    seen[idx] = true;
                    assert_eq!(g.decode(idx), (4, 5, si));
                    assert_eq!(g.decode_time(idx), (t, sp));
                    let plane = idx / g.pixels();
                    assert_eq!(g.plane_coords(plane), vec![g.sizes[si] as f32, t as f32 * 4.0, [0.0, 8.0][sp]]);
                }
            }
        }
    }
}
