//! CPU twin of the GP posterior, UCB argmax and window averaging over the
//! candidate grid. The grid is cut into tiles of `TILE_ROWS` × `TILE_COLS`
//! candidates of one plane; work is split by tile, and the inner loops run
//! along a tile's candidates so they vectorise.
//!
//! Each tile keeps its observations' kernel rows k_i(·), μ and 1 − σ² between
//! iterations. When the next GP only appends one observation and keeps the
//! length scales (the usual case: they sit at a bound), L's leading block and
//! hence L⁻¹'s leading rows are unchanged, so σ² loses one term (the new row
//! of L⁻¹K) and μ = wᵀK reuses the cached K: O(n·M) instead of O(n²·M).
//!
//! The UCB search visits few tiles, after an append and after a full pass
//! (a refit that moved the length scales) alike: a tile's UCB is bounded by
//! its prior's maximum, the kernel's range over the tile (each observation at
//! its nearest and farthest candidate) and σ² (its last value or bound since
//! an append only lowers σ², or the variance given its nearest observation,
//! or 1). A tile whose μ was exact at an earlier version of this pass's
//! kernel also bounds μ by that μ's maximum and the weights' change since
//! (mostly the newest observation's weight, so much tighter than the bound
//! from the prior). Tiles whose bound is below the best exact value found
//! cannot hold the argmax and stay stale; a stale tile catches up when a
//! later search or the map needs it (the skipped full pass, then the appends
//! since), with the same sums in the same order, so every value has the bits
//! an eager update would give it. The map's read of every tile keeps no rows
//! it computes.

use crate::compute::{check_session, Evaluated, GpSession, MapGrid, PosteriorUpdates, Step};
use crate::error::{BorexError, Result};
use crate::gp::{CandidateGrid, PosteriorInputs};
use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;
use std::ops::Range;

const SQRT3: f32 = 1.732_050_8;

/// Largest kernel-row cache (n × candidates × 4 bytes) a session keeps; past
/// it every iteration recomputes from scratch with transient blocks.
const CACHE_BYTES: usize = 512 << 20;

/// Estimated operations below which a round of the search runs on the
/// calling thread (about 4 ms of work). On two cores, between two model
/// calls (the pool asleep), rounds past 4 M on the pool made in-process
/// refines' search slower than one thread (chelsea's tile rounds 22–30 vs
/// 17–18 ms; coffee's posterior 84–85 vs 74–79 ms), and cold ones no faster.
/// Past 16 M they are about as fast; the `posterior` stage's one large
/// search, its pool warm, still gains from them (1.6 ms here, 2.1 ms on one
/// thread, 1.3 ms past 4 M).
const PARALLEL_WORK: usize = 16_000_000;

/// Tile height and width: 128 candidates keep a tile's K (n × 128) in L1/L2,
/// and tiles this small leave 2–13 % of the grid to search after an append
/// on the sample images (docs/benchmarks.md).
const TILE_ROWS: u32 = 8;
const TILE_COLS: u32 = 16;

/// Tiles per side of a group: the search bounds the 4 × 4 tiles of a group
/// first and a group's own tiles only when the group's bound reaches the best
/// value so far (bounding every tile was a quarter of the search).
const GROUP: u32 = 4;

/// Kernel rows reserved per tile at a time: untouched capacity costs no
/// memory, while growing by doubling copied the whole cache into fresh pages
/// (page faults were 17 % of a refine's samples).
const RESERVE_ROWS: usize = 128;

/// The GP stages of one refine loop on the CPU (the GPU path's twin and test oracle).
pub struct CpuGpSession {
    grid: CandidateGrid,
    gp: Option<PosteriorInputs>,
    tiles: Vec<Tile>,
    /// The tiles by group of GROUP × GROUP, for the search's first bound.
    groups: Vec<TileGroup>,
    /// L⁻¹'s last row of every append since the last full pass, in order: a
    /// tile's σ² has taken in the first `Tile::applied` of them.
    appends: Vec<Vec<f32>>,
    /// Bumped by every pass; a tile's μ is current when its version matches.
    version: u64,
    /// The last full pass, which tiles no search has visited since redo when read.
    full: FullPass,
    /// The weights of every version since the last full pass, in order: a
    /// tile's μ of an earlier one bounds its μ now (see [`UcbBounds`]).
    weights: Vec<Vec<f32>>,
    evaluated: Option<Evaluated>,
    updates: PosteriorUpdates,
    cache_bytes: usize,
    prune: bool,
}

/// TILE_ROWS × TILE_COLS candidates (fewer at the grid's edges) of one plane,
/// row-major, and what the session keeps of them.
struct Tile {
    plane: usize,
    rows: Range<u32>,
    cols: Range<u32>,
    /// The prior under each candidate.
    prior: Vec<f32>,
    /// Kernel rows of the first `k_rows` observations, `len()` values each.
    k: Vec<f32>,
    k_rows: usize,
    mu: Vec<f32>,
    /// 1 − |L⁻¹k|², before the clamp at 0 and the square root.
    s2: Vec<f32>,
    /// The session version μ is current for.
    version: u64,
    /// A bound on μ at session version `mu_at`: its largest value where μ
    /// was computed then, or the search's bound where it was bounded then.
    mu_ub: f32,
    mu_at: u64,
    /// Appends σ² has taken in.
    applied: usize,
    /// Largest prior value and largest |prior|.
    prior_max: f32,
    prior_abs: f32,
    /// Largest σ² as last computed: a bound on σ² until the next full pass.
    s2_max: f32,
    /// The full pass the kernel rows and σ² belong to.
    pass: u64,
}

/// Up to GROUP × GROUP neighbouring tiles of one plane.
struct TileGroup {
    plane: usize,
    /// Its first row and column (multiples of GROUP tiles).
    row: u32,
    col: u32,
    /// Indices into the session's tiles.
    tiles: Vec<usize>,
    prior_max: f32,
    prior_abs: f32,
    /// A bound on its tiles' μ at session version `mu_at` (see [`Tile`]).
    mu_ub: f32,
    mu_at: u64,
}

/// What brings a stale tile up to date after appends.
struct CatchUp<'a> {
    grid: &'a CandidateGrid,
    gp: &'a PosteriorInputs,
    appends: &'a [Vec<f32>],
    version: u64,
    full: &'a FullPass,
}

/// A full pass as every tile takes it in: [L⁻¹; wᵀ] of its n observations.
#[derive(Default)]
struct FullPass {
    a: Array2<f32>,
    n: usize,
    /// The session version it made.
    version: u64,
    /// Counts full passes; a tile's rows and σ² are of the pass whose id it holds.
    id: u64,
}

impl CpuGpSession {
    /// A session over `grid` with the prior map `prior` (row-major, the grid's H×W).
    pub fn new(grid: &CandidateGrid, prior: &[f32]) -> Result<Self> {
        check_session(grid, prior)?;
        let (h, w) = (grid.height, grid.width);
        let mut tiles = Vec::new();
        for plane in 0..grid.planes() {
            // The prior is per pixel, or per frame and pixel on a clip grid.
            let frame = grid.time.as_ref().map_or(0, |_| grid.decode_time(plane * grid.pixels()).0 as usize);
            let frame_prior = &prior[frame * grid.pixels()..(frame + 1) * grid.pixels()];
            for r0 in (0..h).step_by(TILE_ROWS as usize) {
                for c0 in (0..w).step_by(TILE_COLS as usize) {
                    let (rows, cols) = (r0..(r0 + TILE_ROWS).min(h), c0..(c0 + TILE_COLS).min(w));
                    let tile_prior: Vec<f32> = rows
                        .clone()
                        .flat_map(|r| &frame_prior[r as usize * w as usize..][cols.start as usize..cols.end as usize])
                        .copied()
                        .collect();
                    let b = tile_prior.len();
                    tiles.push(Tile {
                        plane,
                        rows,
                        cols,
                        prior_max: largest(&tile_prior),
                        prior_abs: tile_prior.iter().fold(0.0, |a: f32, &v| a.max(v.abs())),
                        prior: tile_prior,
                        k: Vec::new(),
                        k_rows: 0,
                        mu: vec![0.0; b],
                        s2: vec![0.0; b],
                        version: 0,
                        mu_ub: f32::INFINITY,
                        mu_at: 0,
                        applied: 0,
                        s2_max: 1.0,
                        pass: 0,
                    });
                }
            }
        }
        let mut groups: Vec<TileGroup> = Vec::new();
        for (i, t) in tiles.iter().enumerate() {
            let (row, col) =
                (t.rows.start - t.rows.start % (GROUP * TILE_ROWS), t.cols.start - t.cols.start % (GROUP * TILE_COLS));
            let at = groups.iter().rposition(|g| (g.plane, g.row, g.col) == (t.plane, row, col));
            let g = match at {
                Some(g) => &mut groups[g],
                None => {
                    groups.push(TileGroup {
                        plane: t.plane,
                        row,
                        col,
                        tiles: Vec::new(),
                        prior_max: f32::NEG_INFINITY,
                        prior_abs: 0.0,
                        mu_ub: f32::INFINITY,
                        mu_at: 0,
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            g.tiles.push(i);
            (g.prior_max, g.prior_abs) = (g.prior_max.max(t.prior_max), g.prior_abs.max(t.prior_abs));
        }
        Ok(Self {
            grid: grid.clone(),
            gp: None,
            tiles,
            groups,
            appends: Vec::new(),
            version: 0,
            full: FullPass::default(),
            weights: Vec::new(),
            evaluated: None,
            updates: PosteriorUpdates::default(),
            cache_bytes: CACHE_BYTES,
            prune: true,
        })
    }

    /// Keep at most `bytes` of kernel rows (0: recompute every time).
    pub fn with_cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// With `false`, every UCB search brings every tile up to date (the
    /// eager session the pruned search is tested against).
    pub fn with_pruning(mut self, prune: bool) -> Self {
        self.prune = prune;
        self
    }

    /// Bring the stored posterior to the last GP set: a full pass over every
    /// tile, or after an append only the bookkeeping (tiles catch up when
    /// read). With `ucb = Some(κ)` (σ² wanted) the UCB argmax comes back too.
    fn evaluate(&mut self, sigma: bool, ucb: Option<f32>) -> Result<Option<(usize, f32)>> {
        let gp = self.gp.take().ok_or_else(|| BorexError::invalid("GP session used before set_gp"))?;
        let result = self.evaluate_gp(&gp, sigma, ucb);
        self.gp = Some(gp);
        result
    }

    fn evaluate_gp(&mut self, gp: &PosteriorInputs, sigma: bool, ucb: Option<f32>) -> Result<Option<(usize, f32)>> {
        let step = Evaluated::step(self.evaluated.as_ref(), gp, sigma);
        if step == Step::Same {
            return Ok(ucb.map(|kappa| self.search(gp, kappa)));
        }
        let cached = gp.n * self.grid.len() * 4 <= self.cache_bytes;
        self.version += 1;
        if step == Step::Append && cached {
            self.updates.incremental += 1;
            // Appending keeps a stored σ² valid even on a mean-only request.
            let sigma = self.evaluated.as_ref().is_some_and(|e| e.sigma);
            if sigma {
                self.appends.push(gp.l_inv[(gp.n - 1) * gp.n..].to_vec());
            }
            self.evaluated = Some(Evaluated::new(gp, sigma, cached));
            self.weights.push(gp.weights.clone());
            return Ok(ucb.filter(|_| sigma).map(|kappa| self.search(gp, kappa)));
        }
        self.updates.full += 1;
        self.appends.clear();
        self.full = FullPass { a: stacked(gp), n: gp.n, version: self.version, id: self.full.id + 1 };
        self.weights = vec![gp.weights.clone()];
        self.evaluated = Some(Evaluated::new(gp, sigma, cached));
        // The argmax needs σ² of this very pass.
        let ucb = ucb.filter(|_| sigma);
        if let Some(kappa) = ucb.filter(|_| self.prune && cached) {
            // Only the tiles the search visits take the pass now; the others
            // when they are next read, with the same sums (Tile::catch_up).
            for t in &mut self.tiles {
                t.k.clear();
                (t.k_rows, t.s2_max) = (0, 1.0);
            }
            return Ok(Some(self.search(gp, kappa)));
        }
        let (grid, full) = (&self.grid, &self.full);
        let best = self
            .tiles
            .par_iter_mut()
            .map(|t| {
                t.full_pass(grid, gp, full, sigma, cached);
                ucb.map_or(NO_MAX, |kappa| t.argmax(grid, kappa))
            })
            .reduce(|| NO_MAX, first_max);
        Ok(ucb.map(|_| best))
    }

    /// The UCB argmax over every candidate of the current posterior: groups
    /// of tiles best first by their bound, their tiles best first by theirs,
    /// searched in rounds that double, until no bound left reaches the best
    /// value found. Ties count as reaching it, so the first maximum is the
    /// one an exhaustive scan finds; with no finite value found, every tile
    /// is searched.
    fn search(&mut self, gp: &PosteriorInputs, kappa: f32) -> (usize, f32) {
        let ctx = CatchUp { grid: &self.grid, gp, appends: &self.appends, version: self.version, full: &self.full };
        let exact = |t: &mut Tile| {
            t.catch_up(&ctx, true, true);
            t.argmax(ctx.grid, kappa)
        };
        if !self.prune {
            return self.tiles.par_iter_mut().map(exact).reduce(|| NO_MAX, first_max);
        }
        let bounds = UcbBounds::new(&self.grid, gp, kappa, &self.weights, self.full.version);
        // A NaN bound (a NaN weight, say) ranks first, so its tiles are
        // searched; the values found are never NaN (the argmax reads NaN as −∞).
        let finite = |b: f32| if b.is_nan() { f32::INFINITY } else { b };
        let group_ub: Vec<f32> = self.groups.iter().map(|g| finite(bounds.group(g, &self.tiles))).collect();
        let mut groups: Vec<usize> = (0..group_ub.len()).collect();
        groups.sort_unstable_by(|&a, &b| group_ub[b].total_cmp(&group_ub[a]));
        // Bounded tiles not searched yet, the best last.
        let mut pending: Vec<(f32, usize)> = Vec::new();
        let mut slots: Vec<Option<&mut Tile>> = self.tiles.iter_mut().map(Some).collect();
        let (mut best, mut next, mut round) = (NO_MAX, 0, 2 * rayon::current_num_threads());
        loop {
            // Open every group that could hold a tile above both the best value
            // found and the best bounded tile: its tiles join the queue.
            let mut top = pending.last().map_or(f32::NEG_INFINITY, |p| p.0);
            let mut opened = false;
            while next < groups.len() && group_ub[groups[next]] >= best.1.max(top) {
                let g = &mut self.groups[groups[next]];
                let mut group_mu = f32::NEG_INFINITY;
                for &i in &g.tiles {
                    let t = slots[i].as_deref_mut().expect("a group is opened once");
                    let (mu, s2) = bounds.parts(t);
                    // These bounds hold for later searches' bounds too: σ² only
                    // falls until the next full pass, and μ moves by the
                    // weights' change since (see UcbBounds::region).
                    (t.s2_max, t.mu_ub, t.mu_at) = (t.s2_max.min(s2), mu, self.version);
                    // A NaN bound is no bound.
                    group_mu = group_mu.max(if mu.is_nan() { f32::INFINITY } else { mu });
                    let ub = finite(bounds.ucb((mu, s2)));
                    if ub >= best.1 {
                        pending.push((ub, i));
                        top = top.max(ub);
                    }
                }
                (g.mu_ub, g.mu_at) = (group_mu, self.version);
                (next, opened) = (next + 1, true);
            }
            if opened {
                // Ascending by bound, ties by index descending: popping takes
                // the best bound, then the lower index.
                pending.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
            }
            let mut batch: Vec<&mut Tile> = Vec::new();
            while batch.len() < round {
                match pending.last() {
                    Some(&(ub, i)) if ub >= best.1 => {
                        pending.pop();
                        batch.push(slots[i].take().expect("each tile is searched once"));
                    }
                    _ => break,
                }
            }
            if batch.is_empty() {
                // No queued tile reaches the best, and every group that could was opened.
                return best;
            }
            // Waking the pool costs more than a few up-to-date tiles.
            let work: usize = batch.iter().map(|t| t.catch_up_work(&ctx)).sum();
            let found = if work < PARALLEL_WORK {
                batch.iter_mut().map(|t| exact(t)).fold(NO_MAX, first_max)
            } else {
                batch.par_iter_mut().map(|t| exact(t)).reduce(|| NO_MAX, first_max)
            };
            best = first_max(best, found);
            // Saturating: a search may run more rounds than a usize's bits.
            round = round.saturating_mul(2);
        }
    }

    /// Every tile's μ (and σ² with `sigma`) current, in candidate order.
    fn gather(&mut self, sigma: bool) -> Result<(Vec<f32>, Vec<f32>)> {
        let gp = self.gp.take().ok_or_else(|| BorexError::invalid("GP session used before set_gp"))?;
        let ctx =
            CatchUp { grid: &self.grid, gp: &gp, appends: &self.appends, version: self.version, full: &self.full };
        self.tiles.par_iter_mut().for_each(|t| t.catch_up(&ctx, sigma, false));
        // Every μ is of this version now: the groups' bounds for later searches.
        for g in &mut self.groups {
            let mu = g.tiles.iter().map(|&i| self.tiles[i].mu_ub).fold(f32::NEG_INFINITY, f32::max);
            (g.mu_ub, g.mu_at) = (if mu.is_nan() { f32::INFINITY } else { mu }, self.version);
        }
        let (mut mu, mut s2) = (vec![0.0f32; self.grid.len()], vec![0.0f32; if sigma { self.grid.len() } else { 0 }]);
        for t in &self.tiles {
            let tw = t.cols.len();
            for (dr, r) in t.rows.clone().enumerate() {
                let at = self.grid.encode(r, t.cols.start, t.plane);
                mu[at..at + tw].copy_from_slice(&t.mu[dr * tw..(dr + 1) * tw]);
                if sigma {
                    s2[at..at + tw].copy_from_slice(&t.s2[dr * tw..(dr + 1) * tw]);
                }
            }
        }
        self.gp = Some(gp);
        Ok((mu, s2))
    }
}

impl Tile {
    fn len(&self) -> usize {
        self.prior.len()
    }

    /// Room for `n` kernel rows, `RESERVE_ROWS` at a time.
    fn reserve(&mut self, n: usize) {
        let b = self.len();
        if self.k.capacity() < n * b {
            self.k.reserve_exact(n.max(RESERVE_ROWS) * b - self.k.len());
        }
        self.k.resize(n * b, 0.0);
    }

    /// Recompute everything from `gp`: every kernel row (kept when `cached`),
    /// then [L⁻¹; wᵀ]·K (`a`, (n+1) × n) for σ² (with `sigma`) and μ.
    fn full_pass(&mut self, grid: &CandidateGrid, gp: &PosteriorInputs, full: &FullPass, sigma: bool, cached: bool) {
        let (n, b) = (gp.n, self.len());
        // Past the cache's limit the rows are transient, freed after the pass.
        let mut k = if cached {
            self.reserve(n);
            std::mem::take(&mut self.k)
        } else {
            self.k = Vec::new();
            vec![0.0; n * b]
        };
        self.kernel_rows(grid, gp, 0..n, &mut k);
        full_products(&full.a, &k, n, b, sigma, &self.prior, &mut self.mu, &mut self.s2);
        (self.mu_ub, self.mu_at) = (largest(&self.mu), full.version);
        self.k_rows = if cached { n } else { 0 };
        if cached {
            self.k = k;
        }
        if sigma {
            self.s2_max = largest(&self.s2);
        }
        (self.version, self.applied, self.pass) = (full.version, 0, full.id);
    }

    /// Bring a tile up to `ctx`'s version: the last full pass if it skipped
    /// the tile (with `sigma`, or for a stale μ), the missing kernel rows,
    /// the appends σ² has not taken in (with `sigma`), μ = prior + wᵀK.
    /// With `keep` the new rows join the tile's cache; without (the read of
    /// every tile for the map) they live for this call only, so the tiles no
    /// search visited do not fill memory that nothing reads again (page
    /// faults were a cold refine's largest host cost after the model).
    fn catch_up(&mut self, ctx: &CatchUp, sigma: bool, keep: bool) {
        let n = ctx.gp.n;
        // A skipped pass left no rows (k_rows 0) and no σ².
        let redo = self.pass != ctx.full.id && (sigma || self.version != ctx.version);
        if !redo && self.version == ctx.version && (!sigma || self.applied == ctx.appends.len()) {
            return;
        }
        let (first, b) = (self.k_rows, self.len());
        let mut transient = Vec::new();
        if first < n && keep {
            self.reserve(n);
            let mut k = std::mem::take(&mut self.k);
            self.kernel_rows(ctx.grid, ctx.gp, first..n, &mut k[first * b..]);
            self.k = k;
            self.k_rows = n;
        } else if first < n {
            transient.reserve_exact(n * b);
            transient.extend_from_slice(&self.k[..first * b]);
            transient.resize(n * b, 0.0);
            self.kernel_rows(ctx.grid, ctx.gp, first..n, &mut transient[first * b..]);
        }
        let k = if first < n && !keep { &transient } else { &self.k };
        if redo {
            let n0 = ctx.full.n;
            // Without σ², the pass's μ is of no use when appends followed it:
            // the current μ below replaces it (the map's read of unvisited tiles).
            if sigma || ctx.full.version == ctx.version {
                full_products(&ctx.full.a, &k[..n0 * b], n0, b, sigma, &self.prior, &mut self.mu, &mut self.s2);
                (self.mu_ub, self.mu_at) = (largest(&self.mu), ctx.full.version);
            }
            self.version = ctx.full.version;
            if sigma {
                (self.pass, self.applied) = (ctx.full.id, 0);
                self.s2_max = largest(&self.s2);
            }
        }
        let pending = if sigma { &ctx.appends[self.applied..] } else { &[] };
        let mu = (self.version != ctx.version).then_some(&ctx.gp.weights[..]);
        if mu.is_none() && pending.is_empty() {
            return;
        }
        append_products(k, b, &self.prior, mu, pending, &mut self.mu, &mut self.s2);
        if !pending.is_empty() {
            self.applied += pending.len();
            self.s2_max = largest(&self.s2);
        }
        if mu.is_some() {
            self.version = ctx.version;
            (self.mu_ub, self.mu_at) = (largest(&self.mu), self.version);
        }
    }

    /// Roughly the floating-point operations [`catch_up`](Self::catch_up) needs.
    fn catch_up_work(&self, ctx: &CatchUp) -> usize {
        let (n, b) = (ctx.gp.n, self.len());
        let redo = if self.pass != ctx.full.id { ctx.full.n * (ctx.full.n + 1) * 2 } else { 0 };
        let pending = ctx.appends.len().saturating_sub(if redo > 0 { 0 } else { self.applied });
        // A kernel value costs about 30 operations (a square root and an exponential).
        (n.saturating_sub(self.k_rows) * 30 + redo + (pending + 1) * 2 * n) * b
    }

    /// Kernel values k_j(candidate) of observations `obs` over the tile, one
    /// row of `len()` values per observation.
    fn kernel_rows(&self, grid: &CandidateGrid, gp: &PosteriorInputs, obs: Range<usize>, out: &mut [f32]) {
        kernel_rows(&grid.plane_coords(self.plane), self.rows.clone(), self.cols.clone(), gp, obs, out)
    }

    /// The tile's UCB maximum μ + κ·√max(σ², 0) as a candidate index and value.
    fn argmax(&self, grid: &CandidateGrid, kappa: f32) -> (usize, f32) {
        let (p, v) = block_argmax(&self.mu, &self.s2, kappa, 0);
        let tw = self.cols.len();
        (grid.encode(self.rows.start + (p / tw) as u32, self.cols.start + (p % tw) as u32, self.plane), v)
    }
}

/// Upper bounds on the UCB over a tile for one GP and κ.
struct UcbBounds {
    kappa: f32,
    /// Per observation (padded to whole lanes with weight 0): its weight.
    w: Vec<f32>,
    /// Per version since the last full pass (from `first`): the weights'
    /// change since it (padded likewise) and the sum of its |weights|.
    deltas: Vec<(Vec<f32>, f32)>,
    /// Zeros as long as `w`: no change.
    still: Vec<f32>,
    first: u64,
    /// Per band of TILE_ROWS rows (TILE_COLS columns), per observation: the
    /// scaled squared distance to the band's nearest and farthest row (column).
    rows: Vec<[Vec<f32>; 2]>,
    cols: Vec<[Vec<f32>; 2]>,
    /// The same per band of a group's rows (columns).
    group_rows: Vec<[Vec<f32>; 2]>,
    group_cols: Vec<[Vec<f32>; 2]>,
    /// Per plane, per observation: the scaled squared distance of the
    /// remaining coordinates.
    rest: Vec<Vec<f32>>,
    /// Rounding allowance relative to the values' scale: the bound is in f32
    /// with its own order of sums, the exact value in another.
    rel_slack: f32,
    sum_abs_w: f32,
    /// K's diagonal 1 + α, from L⁻¹'s first entry 1/√(1 + α).
    k_ii: f32,
    /// Rounding allowance of the σ² bound from the kernel (see [`Self::tile`]).
    s2_slack: f32,
}

/// Observations per vector of the bound's loop.
const LANES: usize = 8;

impl UcbBounds {
    /// Bounds for `gp`, whose session holds the weights of each version
    /// since its last full pass, the first of them version `first`.
    fn new(grid: &CandidateGrid, gp: &PosteriorInputs, kappa: f32, history: &[Vec<f32>], first: u64) -> Self {
        let d = gp.length_scales.len();
        let padded = gp.n.next_multiple_of(LANES);
        // Padding sits far away (kernel 0) with weight 0.
        let per_obs = |f: &dyn Fn(usize) -> f32, pad: f32| -> Vec<f32> {
            (0..padded).map(|i| if i < gp.n { f(i) } else { pad }).collect()
        };
        // Nearest and farthest scaled squared distance from coordinate x to [lo, hi].
        let span = |lo: f32, hi: f32, l: f32, dim: usize| -> [Vec<f32>; 2] {
            let x = |i: usize| gp.x[d * i + dim];
            [
                per_obs(&|i| ((lo - x(i)).max(x(i) - hi).max(0.0) / l).powi(2), 1e4),
                per_obs(&|i| ((x(i) - lo).abs().max((x(i) - hi).abs()) / l).powi(2), 1e4),
            ]
        };
        let bands = |len: u32, step: u32, l: f32, dim: usize| -> Vec<[Vec<f32>; 2]> {
            (0..len).step_by(step as usize).map(|a| span(a as f32, ((a + step).min(len) - 1) as f32, l, dim)).collect()
        };
        let rest = (0..grid.planes())
            .map(|p| {
                let coords = grid.plane_coords(p);
                per_obs(
                    &|i| {
                        let x = &gp.x[d * i + 2..d * (i + 1)];
                        coords
                            .iter()
                            .zip(x)
                            .zip(&gp.length_scales[2..])
                            .map(|((c, xc), l)| ((c - xc) / l).powi(2))
                            .sum()
                    },
                    0.0,
                )
            })
            .collect();
        // Each of μ's n + 1 sums and the kernel's polynomial exp (3e-7)
        // round by a few f32 ulps; ten times that is still far below the
        // gaps between tiles.
        let rel_slack = 1e-5 + 4e-7 * gp.n as f32;
        let sum_abs = |w: &[f32]| w.iter().map(|w| w.abs()).sum::<f32>();
        let sum_abs_w = sum_abs(&gp.weights);
        let deltas = history
            .iter()
            .map(|old| (per_obs(&|i| gp.weights[i] - old.get(i).copied().unwrap_or(0.0), 0.0), sum_abs(old)))
            .collect();
        Self {
            kappa,
            w: per_obs(&|i| gp.weights[i], 0.0),
            deltas,
            still: vec![0.0; padded],
            first,
            rows: bands(grid.height, TILE_ROWS, gp.length_scales[0], 0),
            cols: bands(grid.width, TILE_COLS, gp.length_scales[1], 1),
            group_rows: bands(grid.height, GROUP * TILE_ROWS, gp.length_scales[0], 0),
            group_cols: bands(grid.width, GROUP * TILE_COLS, gp.length_scales[1], 1),
            rest,
            rel_slack,
            sum_abs_w,
            k_ii: 1.0 / (gp.l_inv[0] * gp.l_inv[0]),
            s2_slack: {
                // σ² = 1 − |L⁻¹k|² in f32 errs by about n·ε·|L⁻¹|² (rows' absolute
                // sums); measured on refines at most 2e-7 with |L⁻¹| ≤ 5, so
                // this allows over a thousand times that.
                let n = gp.n.max(1);
                let m = (0..n)
                    .map(|j| gp.l_inv[j * n..(j + 1) * n].iter().map(|v| v.abs()).sum::<f32>())
                    .fold(0.0, f32::max);
                1e-4 + 1e-6 * n as f32 * m * m
            },
        }
    }

    /// max over a group's candidates of μ + κσ, from above.
    fn group(&self, g: &TileGroup, tiles: &[Tile]) -> f32 {
        let (rows, cols) = ((g.row / (GROUP * TILE_ROWS)) as usize, (g.col / (GROUP * TILE_COLS)) as usize);
        self.ucb(self.region(&Region {
            rows: &self.group_rows[rows],
            cols: &self.group_cols[cols],
            plane: g.plane,
            prior: (g.prior_max, g.prior_abs),
            // The largest of its tiles' σ² bounds.
            s2_max: g.tiles.iter().map(|&i| tiles[i].s2_max).fold(f32::NEG_INFINITY, f32::max),
            since: self.since(g.mu_ub, g.mu_at),
        }))
    }

    /// A bound `ub` on μ at session version `at`, as the change since then
    /// takes it: if `at` is of this pass (the same kernel rows).
    fn since(&self, ub: f32, at: u64) -> Option<(&[f32], f32, f32)> {
        let v = at.checked_sub(self.first)? as usize;
        self.deltas.get(v).map(|(dw, old_abs)| (&dw[..], *old_abs, ub))
    }

    /// The UCB bound from bounds on μ and σ².
    fn ucb(&self, (mu, s2): (f32, f32)) -> f32 {
        mu + self.kappa * s2.max(0.0).sqrt()
    }

    /// Bounds from above on the tile's largest μ and largest σ².
    fn parts(&self, t: &Tile) -> (f32, f32) {
        self.region(&Region {
            rows: &self.rows[(t.rows.start / TILE_ROWS) as usize],
            cols: &self.cols[(t.cols.start / TILE_COLS) as usize],
            plane: t.plane,
            prior: (t.prior_max, t.prior_abs),
            s2_max: t.s2_max,
            since: self.since(t.mu_ub, t.mu_at),
        })
    }

    /// Bounds from above on a region's largest μ and largest σ².
    fn region(&self, r: &Region) -> (f32, f32) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { self.region_avx2(r) };
        }
        self.region_impl(r)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn region_avx2(&self, r: &Region) -> (f32, f32) {
        self.region_impl(r)
    }

    #[inline(always)]
    fn region_impl(&self, r: &Region) -> (f32, f32) {
        let k = |d2: f32| {
            let u = SQRT3 * d2.sqrt();
            (1.0 + u) * exp_neg(-u)
        };
        let ([rn, rf], [cn, cf], rest) = (r.rows, r.cols, &self.rest[r.plane]);
        // The kernel falls with distance: an observation's largest value over
        // the region is at its nearest candidate, its smallest at the farthest;
        // a positive weight takes the largest, a negative one the smallest.
        // LANES partial sums, so the loop vectorises (a bound needs no order);
        // lanes read by index, as zipped iterators were not inlined into the
        // AVX2 copy (a call per lane group, 3× slower).
        // The same for the weights' change since an earlier μ (zeros without one).
        let dw = r.since.map_or(&self.still[..], |s| s.0);
        let (mut m, mut m_since, mut k_far) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
        let len = self.w.len();
        let lane = |v: &[f32], o: usize| -> [f32; LANES] { v[o..o + LANES].try_into().expect("a lane") };
        for o in (0..len).step_by(LANES) {
            let (w, dw, rn, rf, cn, cf, rest) =
                (lane(&self.w, o), lane(dw, o), lane(rn, o), lane(rf, o), lane(cn, o), lane(cf, o), lane(rest, o));
            for l in 0..LANES {
                let (hi, lo) = (k(rn[l] + cn[l] + rest[l]), k(rf[l] + cf[l] + rest[l]));
                m[l] += if w[l] > 0.0 { w[l] * hi } else { w[l] * lo };
                m_since[l] += if dw[l] > 0.0 { dw[l] * hi } else { dw[l] * lo };
                k_far[l] = k_far[l].max(lo);
            }
        }
        let (m, m_since): (f32, f32) = (m.iter().sum(), m_since.iter().sum());
        // σ² only falls as observations come (an append subtracts), and is
        // at most 1 − k_i(c)²/(1 + α) for any one observation i (the variance
        // given that observation alone): the last σ² or, where an
        // observation is near every candidate, the kernel's bound.
        let k_far = k_far.iter().fold(0.0f32, |a, &b| a.max(b)) * (1.0 - 1e-5);
        let s2 = r.s2_max.min(1.0 - k_far * k_far / self.k_ii + self.s2_slack);
        // The allowance covers μ's rounding and the UCB's own (κ included).
        let (prior_max, prior_abs) = r.prior;
        let slack = self.rel_slack * (1.0 + prior_abs + self.sum_abs_w + self.kappa);
        let mu = prior_max + m + slack;
        // μ now = the earlier μ + the change's sum, with both μ's rounding.
        let mu = r.since.map_or(mu, |(_, old_abs, old_ub)| {
            let slack = self.rel_slack * (2.0 * (1.0 + prior_abs + self.kappa) + self.sum_abs_w + old_abs);
            let d = old_ub + m_since + slack;
            // A NaN change leaves the bound without it; a NaN bound stays NaN.
            if d < mu {
                d
            } else {
                mu
            }
        });
        (mu, s2)
    }
}

/// Candidates a bound is over: bands of rows and columns of one plane, with
/// their prior's largest value and largest |value|, and a bound on σ².
struct Region<'a> {
    rows: &'a [Vec<f32>; 2],
    cols: &'a [Vec<f32>; 2],
    plane: usize,
    prior: (f32, f32),
    s2_max: f32,
    /// The weights' change since an earlier version, the sum of its
    /// |weights| and a bound on the region's μ then.
    since: Option<(&'a [f32], f32, f32)>,
}

/// The largest value (−∞ for none): a tile's prior and σ² bounds.
fn largest(v: &[f32]) -> f32 {
    v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x))
}

/// A full pass's products for one tile of `b` candidates: σ² = 1 − Σ_j
/// (L⁻¹K)_j² (with `sigma`) and μ = prior + wᵀK, from `a` = [L⁻¹; wᵀ].
#[allow(clippy::too_many_arguments)]
fn full_products(
    a: &Array2<f32>,
    k: &[f32],
    n: usize,
    b: usize,
    sigma: bool,
    prior: &[f32],
    mu: &mut [f32],
    s2: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && n <= GEMM_KC
        && b.is_multiple_of(16)
    {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { full_products_fma(a, k, n, b, sigma, prior, mu, s2) };
    }
    full_products_gemm(a, k, n, b, sigma, prior, mu, s2)
}

/// matrixmultiply's depth block for f32 (`S_KC`): up to this inner
/// dimension its product is one fused multiply-add chain per value.
const GEMM_KC: usize = 256;

/// [`full_products_gemm`]'s values without its per-call packing (which
/// dominated tiles this small): on an AVX2 + FMA CPU matrixmultiply computes
/// each value of a product with inner dimension ≤ `GEMM_KC` as one fused
/// multiply-add chain from 0 over the inner index in order, and so does this,
/// so the bits are the same (tests/incremental_posterior.rs and the session
/// tests compare the two). L⁻¹'s zeros above the diagonal add exact zeros.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn full_products_fma(
    a: &Array2<f32>,
    k: &[f32],
    n: usize,
    b: usize,
    sigma: bool,
    prior: &[f32],
    mu: &mut [f32],
    s2: &mut [f32],
) {
    const C: usize = 16;
    const E: usize = 4;
    let a = a.as_slice().expect("row-major [L⁻¹; wᵀ]");
    let row = |i: usize, c0: usize| -> &[f32; C] { k[i * b + c0..][..C].try_into().expect("C values") };
    for c0 in (0..b).step_by(C) {
        if sigma {
            let mut s = [1.0f32; C];
            for j0 in (0..n).step_by(E) {
                let rows = E.min(n - j0);
                let mut acc = [[0.0f32; C]; E];
                // Row j of L⁻¹ is zero past column j: the group's last row bounds the chain.
                for i in 0..j0 + rows {
                    let kk = row(i, c0);
                    for e in 0..E {
                        let l = if e < rows { a[(j0 + e) * n + i] } else { 0.0 };
                        for c in 0..C {
                            acc[e][c] = l.mul_add(kk[c], acc[e][c]);
                        }
                    }
                }
                for v in acc.iter().take(rows) {
                    for (x, y) in s.iter_mut().zip(v) {
                        *x -= y * y;
                    }
                }
            }
            s2[c0..c0 + C].copy_from_slice(&s);
        }
        let mut acc = [0.0f32; C];
        for i in 0..n {
            let (w, kk) = (a[n * n + i], row(i, c0));
            for c in 0..C {
                acc[c] = w.mul_add(kk[c], acc[c]);
            }
        }
        for ((m, p), v) in mu[c0..c0 + C].iter_mut().zip(&prior[c0..c0 + C]).zip(&acc) {
            *m = p + v;
        }
    }
}

/// The same products through ndarray's matrix product (matrixmultiply).
#[allow(clippy::too_many_arguments)]
fn full_products_gemm(
    a: &Array2<f32>,
    k: &[f32],
    n: usize,
    b: usize,
    sigma: bool,
    prior: &[f32],
    mu: &mut [f32],
    s2: &mut [f32],
) {
    let k = ArrayView2::from_shape((n, b), &k[..n * b]).expect("n × B");
    // L⁻¹ is lower triangular: rows j0..j1 of L⁻¹K only need K's first
    // j1 rows. The last part also carries wᵀ (row n of `a`), which needs all n.
    let parts = (n / 16).clamp(1, 4);
    if sigma {
        s2.iter_mut().for_each(|x| *x = 1.0);
    }
    for p in 0..parts {
        let last = p + 1 == parts;
        let (j0, j1) = (n * p / parts, if last { n + 1 } else { n * (p + 1) / parts });
        if !sigma && !last {
            continue;
        }
        let cols = j1.min(n);
        let v = a.slice(s![j0..j1, ..cols]).dot(&k.slice(s![..cols, ..]));
        if sigma {
            for vj in v.rows().into_iter().take(j1.min(n) - j0) {
                for (x, y) in s2.iter_mut().zip(vj.as_slice().expect("row-major")) {
                    *x -= y * y;
                }
            }
        }
        if last {
            for ((m, p), v) in mu.iter_mut().zip(prior).zip(v.row(j1 - j0 - 1)) {
                *m = p + v;
            }
        }
    }
}

/// After appends, for one tile of `b` candidates with kernel rows `k`: σ² −=
/// (rᵀK)² for each of `pending`'s rows r in order, and μ = prior + wᵀK with
/// `mu = Some(w)`. Each sum runs over the observations in order, as an
/// eager update one append at a time would run it.
fn append_products(
    k: &[f32],
    b: usize,
    prior: &[f32],
    mu: Option<&[f32]>,
    pending: &[Vec<f32>],
    m: &mut [f32],
    s2: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { append_products_avx2(k, b, prior, mu, pending, m, s2) };
    }
    append_products_impl(k, b, prior, mu, pending, m, s2)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn append_products_avx2(
    k: &[f32],
    b: usize,
    prior: &[f32],
    mu: Option<&[f32]>,
    pending: &[Vec<f32>],
    m: &mut [f32],
    s2: &mut [f32],
) {
    append_products_impl(k, b, prior, mu, pending, m, s2)
}

#[inline(always)]
fn append_products_impl(
    k: &[f32],
    b: usize,
    prior: &[f32],
    mu: Option<&[f32]>,
    pending: &[Vec<f32>],
    m: &mut [f32],
    s2: &mut [f32],
) {
    assert!(m.len() == b && s2.len() == b && prior.len() == b && k.len().is_multiple_of(b.max(1)));
    // Sixteen candidates (two AVX registers) per sweep where the tile allows.
    if b.is_multiple_of(16) {
        replay::<16>(k, b, pending, s2);
        if let Some(w) = mu {
            mean::<16>(k, b, prior, w, m);
        }
    } else {
        replay::<1>(k, b, pending, s2);
        if let Some(w) = mu {
            mean::<1>(k, b, prior, w, m);
        }
    }
}

/// σ² −= (rᵀK)² for each of `pending`'s rows r, in order: four appends and
/// C candidates at a time, their sums kept in registers while the kernel
/// rows stream past once. Each sum runs over the observations in order from
/// 0 (a shorter r adds exact zeros), as one append at a time would run it.
#[inline(always)]
fn replay<const C: usize>(k: &[f32], b: usize, pending: &[Vec<f32>], s2: &mut [f32]) {
    const E: usize = 4;
    for group in pending.chunks(E) {
        let rows = group.iter().map(Vec::len).max().unwrap_or(0);
        let r: Vec<[f32; E]> = (0..rows)
            .map(|i| std::array::from_fn(|e| group.get(e).and_then(|r| r.get(i)).copied().unwrap_or(0.0)))
            .collect();
        for c0 in (0..b).step_by(C) {
            let mut acc = [[0.0f32; C]; E];
            for (i, ri) in r.iter().enumerate() {
                let kk: &[f32; C] = k[i * b + c0..][..C].try_into().expect("C values");
                for e in 0..E {
                    for c in 0..C {
                        acc[e][c] += ri[e] * kk[c];
                    }
                }
            }
            for v in acc.iter().take(group.len()) {
                for (x, y) in s2[c0..c0 + C].iter_mut().zip(v) {
                    *x -= y * y;
                }
            }
        }
    }
}

/// μ = prior + wᵀK, C candidates at a time, the sum over observations in order.
#[inline(always)]
fn mean<const C: usize>(k: &[f32], b: usize, prior: &[f32], w: &[f32], m: &mut [f32]) {
    for c0 in (0..b).step_by(C) {
        let mut acc: [f32; C] = prior[c0..c0 + C].try_into().expect("C values");
        for (i, wi) in w.iter().enumerate() {
            let kk: &[f32; C] = k[i * b + c0..][..C].try_into().expect("C values");
            for c in 0..C {
                acc[c] += wi * kk[c];
            }
        }
        m[c0..c0 + C].copy_from_slice(&acc);
    }
}

/// Kernel values k_j(candidate) for observations `obs` over grid rows `rows`
/// and columns `cols` of one plane (`coords`: its GP coordinates after row
/// and column): `out` holds obs.len() rows of rows.len()·cols.len() values.
fn kernel_rows(
    coords: &[f32],
    rows: Range<u32>,
    cols: Range<u32>,
    gp: &PosteriorInputs,
    obs: Range<usize>,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { kernel_rows_avx2(coords, rows, cols, gp, obs, out) };
    }
    kernel_rows_impl(coords, rows, cols, gp, obs, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_rows_avx2(
    coords: &[f32],
    rows: Range<u32>,
    cols: Range<u32>,
    gp: &PosteriorInputs,
    obs: Range<usize>,
    out: &mut [f32],
) {
    kernel_rows_impl(coords, rows, cols, gp, obs, out)
}

#[inline(always)]
fn kernel_rows_impl(
    coords: &[f32],
    rows: Range<u32>,
    cols: Range<u32>,
    gp: &PosteriorInputs,
    obs: Range<usize>,
    out: &mut [f32],
) {
    let d = coords.len() + 2;
    let (lr, lq) = (gp.length_scales[0], gp.length_scales[1]);
    let tw = cols.len();
    let b = rows.len() * tw;
    for (krow, i) in out.chunks_exact_mut(b).zip(obs) {
        let x = &gp.x[d * i..d * (i + 1)];
        let (xr, xq) = (x[0], x[1]);
        // The plane's part of the distance, summed in the 3-D order (size first).
        let rest =
            coords.iter().zip(&x[2..]).zip(&gp.length_scales[2..]).fold(None, |acc: Option<f32>, ((c, xc), l)| {
                let v = ((c - xc) / l).powi(2);
                Some(acc.map_or(v, |a| a + v))
            });
        let rest = rest.unwrap_or(0.0);
        // The columns' squared distances, once for all rows (the same values
        // as computed per candidate: only the division is saved).
        let mut dq2 = [0.0f32; TILE_COLS as usize];
        let dq2 = if tw <= dq2.len() { &mut dq2[..tw] } else { &mut vec![0.0; tw][..] };
        for (v, q) in dq2.iter_mut().zip(cols.clone()) {
            let dq = (q as f32 - xq) / lq;
            *v = dq * dq;
        }
        for (dr_i, r) in rows.clone().enumerate() {
            let base = ((r as f32 - xr) / lr).powi(2) + rest;
            for (kv, d2) in krow[dr_i * tw..(dr_i + 1) * tw].iter_mut().zip(dq2.iter()) {
                let t = SQRT3 * (base + d2).sqrt();
                *kv = (1.0 + t) * exp_neg(-t);
            }
        }
    }
}

/// [L⁻¹; wᵀ] as one (n+1) × n matrix.
fn stacked(gp: &PosteriorInputs) -> Array2<f32> {
    let n = gp.n;
    Array2::from_shape_fn((n + 1, n), |(j, i)| if j < n { gp.l_inv[j * n + i] } else { gp.weights[i] })
}

/// Values per piece of [`block_argmax`]'s scratch buffer.
const ARGMAX_PIECE: usize = 2048;

/// e^x for x ≤ 0 in straight-line f32 arithmetic that vectorises (libm's expf
/// does not): x = n·ln2 + r, e^r by a degree-7 polynomial, 2^n by exponent
/// bits. Relative error below 3e-7; results under e^-87 flush to 0.
#[inline(always)]
pub(crate) fn exp_neg(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.max(-87.0);
    // SAFETY: x ∈ [−87, 0], so the product is a small finite negative number.
    let n: i32 = unsafe { (x * std::f32::consts::LOG2_E - 0.5).to_int_unchecked() };
    let nf = n as f32;
    let r = (x - nf * LN2_HI) - nf * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((n + 127) as u32) << 23)
}

impl GpSession for CpuGpSession {
    fn set_gp(&mut self, gp: &PosteriorInputs) -> Result<()> {
        crate::compute::check_gp_dims(&self.grid, gp)?;
        self.gp = Some(gp.clone());
        Ok(())
    }

    fn ucb_argmax(&mut self, kappa: f32) -> Result<(usize, f32)> {
        self.evaluate(true, Some(kappa))?.ok_or_else(|| BorexError::invalid("the posterior has no σ² to search"))
    }

    fn posterior(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        self.evaluate(true, None)?;
        let (mu, s2) = self.gather(true)?;
        Ok((mu, s2.into_iter().map(|x| x.max(0.0).sqrt()).collect()))
    }

    fn mean_map(&mut self) -> Result<Vec<f32>> {
        self.evaluate(false, None)?;
        let (mu, _) = self.gather(false)?;
        if self.grid.time.is_none() {
            return Ok(window_average(&self.grid, &mu));
        }
        // Clips: each plane's spatial window average, then the temporal one.
        let (h, w, hw) = (self.grid.height, self.grid.width, self.grid.pixels());
        let planes: Vec<f32> = (0..self.grid.planes())
            .flat_map(|p| {
                window_average(&CandidateGrid::new(h, w, vec![self.grid.plane_size(p)]), &mu[p * hw..(p + 1) * hw])
            })
            .collect();
        Ok(crate::compute::temporal_map(&self.grid, &planes))
    }

    fn updates(&self) -> PosteriorUpdates {
        self.updates
    }
}

/// μ along one output row of a [`MapGrid`] (model row coordinate `r`, one size).
pub(crate) fn mean_row(gp: &PosteriorInputs, grid: &MapGrid, r: f32, size: f32, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { mean_row_avx2(gp, grid, r, size, out) };
    }
    mean_row_impl(gp, grid, r, size, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn mean_row_avx2(gp: &PosteriorInputs, grid: &MapGrid, r: f32, size: f32, out: &mut [f32]) {
    mean_row_impl(gp, grid, r, size, out)
}

#[inline(always)]
fn mean_row_impl(gp: &PosteriorInputs, grid: &MapGrid, r: f32, size: f32, out: &mut [f32]) {
    let (lr, lq, ls) = (gp.length_scales[0], gp.length_scales[1], gp.length_scales[2]);
    for (o, &c) in out.iter_mut().zip(&grid.cols) {
        *o = grid.prior_at(r, c);
    }
    for j in 0..gp.n {
        let (dr, ds) = ((r - gp.x[3 * j]) / lr, (size - gp.x[3 * j + 2]) / ls);
        let base = dr * dr + ds * ds;
        let (xq, wj) = (gp.x[3 * j + 1], gp.weights[j]);
        for (o, &c) in out.iter_mut().zip(&grid.cols) {
            let dq = (c - xq) / lq;
            let t = SQRT3 * (base + dq * dq).sqrt();
            *o += wj * ((1.0 + t) * exp_neg(-t));
        }
    }
}

/// The identity of [`first_max`].
const NO_MAX: (usize, f32) = (usize::MAX, f32::NEG_INFINITY);

/// The UCB argmax μ + κ·√max(σ², 0) of one run of candidates starting at
/// index `offset` (NaN counts as −∞; ties go to the smaller index): the
/// values, their maximum and its first position in three passes that
/// vectorise, not one branchy scan.
fn block_argmax(mu: &[f32], s2: &[f32], kappa: f32, offset: usize) -> (usize, f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { block_argmax_avx2(mu, s2, kappa, offset) };
    }
    block_argmax_impl(mu, s2, kappa, offset)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn block_argmax_avx2(mu: &[f32], s2: &[f32], kappa: f32, offset: usize) -> (usize, f32) {
    block_argmax_impl(mu, s2, kappa, offset)
}

#[inline(always)]
fn block_argmax_impl(mu: &[f32], s2: &[f32], kappa: f32, offset: usize) -> (usize, f32) {
    const LANES: usize = 8;
    let mut vals = [0.0f32; ARGMAX_PIECE];
    let mut best = NO_MAX;
    // Blocks longer than the buffer (grids wider than 256) go in pieces.
    for (p, (mu, s2)) in mu.chunks(vals.len()).zip(s2.chunks(vals.len())).enumerate() {
        let vals = &mut vals[..mu.len()];
        for ((v, m), s) in vals.iter_mut().zip(mu).zip(s2) {
            let a = m + kappa * s.max(0.0).sqrt();
            *v = if a.is_nan() { f32::NEG_INFINITY } else { a };
        }
        let mut lanes = [f32::NEG_INFINITY; LANES];
        let mut chunks = vals.chunks_exact(LANES);
        for c in &mut chunks {
            for (l, v) in lanes.iter_mut().zip(c) {
                *l = if *v > *l { *v } else { *l };
            }
        }
        let top = chunks.remainder().iter().chain(&lanes).fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
        let at = vals.iter().position(|&v| v == top).expect("the maximum is one of the values");
        best = first_max(best, (offset + p * ARGMAX_PIECE + at, top));
    }
    best
}

/// Larger value wins; equal values go to the smaller index.
pub(crate) fn first_max(a: (usize, f32), b: (usize, f32)) -> (usize, f32) {
    if b.1 > a.1 || (b.1 == a.1 && b.0 < a.0) {
        b
    } else {
        a
    }
}

/// Per size, the mean of `m(·, ·, s)` over the in-image part of the (2s+1)²
/// window around each pixel; then the average over sizes. Separable running
/// sums (along rows, then down columns), O(1) per pixel whatever s is, in the
/// GPU kernels' order.
///
/// The window is the reference's (`AvgPool2d(2s+1, stride 1, padding s,
/// count_include_pad=False)`): centres [p−s, p+s]. The boxes that cover pixel
/// p (a box covers [r−s, r+s)) have centres in (p−s, p+s], so the window takes
/// one centre more, p−s, whose box ends just before p. Kept as the reference
/// has it so maps compare with the paper's; tests/gpu_twins.rs checks both
/// paths against a brute-force average of exactly this window.
pub fn window_average(grid: &CandidateGrid, m: &[f32]) -> Vec<f32> {
    let (h, w) = (grid.height as usize, grid.width as usize);
    let n_sizes = grid.sizes.len();
    let mut sums = vec![0.0f32; m.len()];
    sums.par_chunks_mut(w).zip(m.par_chunks(w)).enumerate().for_each(|(i, (out, src))| {
        let s = grid.sizes[i / h] as usize;
        let mut acc: f32 = src[..(s + 1).min(w)].iter().sum();
        out[0] = acc;
        for q in 1..w {
            if q + s < w {
                acc += src[q + s];
            }
            if q > s {
                acc -= src[q - s - 1];
            }
            out[q] = acc;
        }
    });
    let span = |x: usize, s: usize, n: usize| ((x + s + 1).min(n) - x.saturating_sub(s)) as f32;
    let scale = 1.0 / n_sizes as f32;
    // Column-wise: each task owns a strip of columns and walks down the rows.
    let mut out = vec![0.0f32; h * w];
    let strip = 16;
    let strips: Vec<Vec<f32>> = (0..w.div_ceil(strip))
        .into_par_iter()
        .map(|t| {
            let (q0, q1) = (t * strip, ((t + 1) * strip).min(w));
            let mut col = vec![0.0f32; h * (q1 - q0)];
            for (k, &s) in grid.sizes.iter().enumerate() {
                let s = s as usize;
                let plane = &sums[k * h * w..(k + 1) * h * w];
                for q in q0..q1 {
                    let cols = span(q, s, w);
                    let mut acc: f32 = (0..(s + 1).min(h)).map(|r| plane[r * w + q]).sum();
                    for r in 0..h {
                        if r > 0 {
                            if r + s < h {
                                acc += plane[(r + s) * w + q];
                            }
                            if r > s {
                                acc -= plane[(r - s - 1) * w + q];
                            }
                        }
                        let v = acc / (cols * span(r, s, h)) * scale;
                        let o = &mut col[r * (q1 - q0) + q - q0];
                        *o = if k == 0 { v } else { *o + v };
                    }
                }
            }
            col
        })
        .collect();
    for (t, col) in strips.iter().enumerate() {
        let (q0, width) = (t * strip, col.len() / h);
        for r in 0..h {
            out[r * w + q0..r * w + q0 + width].copy_from_slice(&col[r * width..(r + 1) * width]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gp::Gp;
    use ndarray::array;
    use rand::{RngExt, SeedableRng};

    /// The fused full pass against ndarray's matrix product (matrixmultiply),
    /// value for value: the claim that lets tiles skip the product's packing.
    #[test]
    fn fused_full_products_equal_matrixmultiply() {
        #[cfg(target_arch = "x86_64")]
        {
            // Without AVX2 + FMA the fused path is never taken: nothing to compare.
            if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")) {
                eprintln!("no AVX2 + FMA: the fused full pass is not used on this CPU");
                return;
            }
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            for n in [1usize, 3, 8, 17, 50, 131] {
                let b = 128;
                // A real L⁻¹ (lower triangular, entries of both signs and sizes).
                let x = Array2::from_shape_fn((n, 3), |(i, d)| i as f64 * [3.1, 7.3, 1.7][d] % 40.0);
                let y: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
                let gp = Gp::with_length_scales(x.view(), &y, &[9.0, 14.0, 6.0], 0.01).unwrap().posterior_inputs();
                let a = stacked(&gp);
                let k: Vec<f32> = (0..n * b).map(|_| rng.random_range(0.0f32..1.0)).collect();
                let prior: Vec<f32> = (0..b).map(|_| rng.random_range(-0.3f32..0.3)).collect();
                for sigma in [true, false] {
                    let (mut m1, mut s1, mut m2, mut s2) = (vec![0.0; b], vec![0.0; b], vec![0.0; b], vec![0.0; b]);
                    // SAFETY: AVX2 and FMA were checked above.
                    unsafe { full_products_fma(&a, &k, n, b, sigma, &prior, &mut m1, &mut s1) };
                    full_products_gemm(&a, &k, n, b, sigma, &prior, &mut m2, &mut s2);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&m1), bits(&m2), "μ, n = {n}");
                    if sigma {
                        assert_eq!(bits(&s1), bits(&s2), "σ², n = {n}");
                    }
                }
            }
        }
    }

    /// Every tile's bound, taken while tiles are stale, is at least the
    /// exact UCB of each of its candidates once they catch up: with the
    /// reference's α and with a 100× smaller one (a worse-conditioned L⁻¹).
    /// Searches between the checks leave tiles stale for one to several
    /// appends, so μ's bound from an earlier μ is checked at every age.
    #[test]
    fn tile_bounds_hold_over_their_candidates() {
        // Groups of tiles whole and cut by the grid's edges (32 × 64 candidates each).
        let grid = CandidateGrid::new(40, 136, vec![2, 5]);
        let prior: Vec<f32> = (0..grid.pixels()).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.004).collect();
        for alpha in [0.01, 1e-4] {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
            let mut sess = CpuGpSession::new(&grid, &prior).unwrap();
            // Every exact value, from a session that brings every tile up to date.
            let mut eager = CpuGpSession::new(&grid, &prior).unwrap().with_pruning(false);
            let (mut xs, mut ys) = (Vec::new(), Vec::new());
            let (mut checked, mut ages) = (0, std::collections::BTreeSet::new());
            for step in 0..25 {
                xs.push([rng.random_range(0.0..40.0), rng.random_range(0.0..136.0), rng.random_range(2.0..5.0)]);
                ys.push(rng.random_range(-1.0..1.0));
                let x = Array2::from_shape_fn((xs.len(), 3), |(i, d)| xs[i][d]);
                let ls = if step < 4 { [6.0, 9.0, 2.0] } else { [10.0, 14.0, 5.0] };
                let gp = Gp::with_length_scales(x.view(), &ys, &ls, alpha).unwrap().posterior_inputs();
                sess.set_gp(&gp).unwrap();
                eager.set_gp(&gp).unwrap();
                let kappa = 2.0;
                // The append taken in, no tile brought up to date: each
                // tile's last σ² and μ are from before the newest observation.
                sess.evaluate(true, None).unwrap();
                let bounds = UcbBounds::new(&grid, &gp, kappa, &sess.weights, sess.full.version);
                // The ages of the μ bounds the tile bounds start from.
                ages.extend(sess.tiles.iter().filter(|t| t.mu_at >= sess.full.version).map(|t| sess.version - t.mu_at));
                let ub: Vec<(f32, f32, f32)> = sess
                    .tiles
                    .iter()
                    .map(|t| {
                        let (m, s2) = bounds.parts(t);
                        (bounds.ucb((m, s2)), m, s2)
                    })
                    .collect();
                let mut group_ub = vec![f32::NAN; sess.tiles.len()];
                for g in &sess.groups {
                    for &i in &g.tiles {
                        group_ub[i] = bounds.group(g, &sess.tiles);
                    }
                }
                eager.evaluate(true, None).unwrap();
                let (mu, s2) = eager.gather(true).unwrap();
                for ((t, (b, bm, bs)), gb) in sess.tiles.iter().zip(&ub).zip(&group_ub) {
                    for r in t.rows.clone() {
                        for c in t.cols.clone() {
                            let i = grid.encode(r, c, t.plane);
                            let exact = mu[i] + kappa * s2[i].max(0.0).sqrt();
                            let at = format!("α {alpha}, step {step}, ({r}, {c}, {})", t.plane);
                            assert!(exact <= *b, "{at}: UCB {exact} above the bound {b}");
                            assert!(exact <= *gb, "{at}: UCB {exact} above its group's bound {gb}");
                            assert!(mu[i] <= *bm, "{at}: μ {} above the bound {bm}", mu[i]);
                            assert!(s2[i] <= *bs, "{at}: σ² {} above the bound {bs}", s2[i]);
                            checked += 1;
                        }
                    }
                }
                // The tiles a search visits catch up; now and then all do.
                if step % 5 == 4 {
                    sess.gather(true).unwrap();
                } else {
                    sess.ucb_argmax(kappa).unwrap();
                }
            }
            assert_eq!(checked, 25 * grid.len());
            assert!((1..=4).all(|a| ages.contains(&a)), "μ bounded from earlier versions of ages {ages:?}");
        }
    }

    /// A BO-like run: each step's GP adds the last argmax (jittered), the
    /// length scales change now and then (full passes) and stay otherwise
    /// (appends). The pruned session must find each step's argmax exactly as
    /// the session that brings every tile up to date, visit fewer tiles, and
    /// end with the same posterior and map, bit for bit.
    #[test]
    fn pruned_search_equals_the_exhaustive_one() {
        // Length scales that shrink at each refit raise σ² over the tiles
        // no search visited since; κ of 3 and 0.5.
        let grid = CandidateGrid::new(40, 72, vec![3, 6, 9]);
        let prior: Vec<f32> = (0..grid.pixels())
            .map(|i| (((i % 72) as f32 - 30.0).powi(2) + ((i / 72) as f32 - 12.0).powi(2)).sqrt() * -0.01)
            .collect();
        let ls = |step: usize| match step {
            0..=3 => [10.0 - 2.0 * step as f64, 6.0, 3.0],
            4..=19 => [8.0, 11.0, 4.0],
            _ => [5.0, 9.0, 3.0],
        };
        pruned_against_exhaustive(grid, &prior, |step| if step % 7 == 6 { 0.5 } else { 3.0 }, ls, (-0.5, 0.5));
        // The reference's grid and κ = 10, length scales at their bound after
        // a few refits, a prior of two blobs and small objective values: σ
        // dominates the UCB and many groups' bounds are close. (A search
        // that stopped when tiles dropped at their own bound emptied its
        // queue, a group holding the argmax not yet opened, failed here.)
        let grid = CandidateGrid::new(224, 224, vec![30, 45, 60, 75]);
        let blob = |r: f32, c: f32, (r0, c0, s): (f32, f32, f32)| (-((r - r0).powi(2) + (c - c0).powi(2)) / s).exp();
        let prior: Vec<f32> = (0..grid.pixels())
            .map(|i| {
                let (r, c) = ((i / 224) as f32, (i % 224) as f32);
                0.3 * blob(r, c, (90.0, 120.0, 2000.0)) + 0.1 * blob(r, c, (40.0, 40.0, 800.0))
            })
            .collect();
        let ls = |step: usize| match step {
            0..=3 => [12.0 + 2.0 * step as f64, 12.0, 10.0 + step as f64],
            _ => [20.0, 20.0, 20.0],
        };
        pruned_against_exhaustive(grid, &prior, |_| 10.0, ls, (-0.1, 0.1));
    }

    /// One run of [`pruned_search_equals_the_exhaustive_one`]: κ and length
    /// scales by step, objective values drawn from the range `y`.
    fn pruned_against_exhaustive(
        grid: CandidateGrid,
        prior: &[f32],
        kappa_at: impl Fn(usize) -> f32,
        ls_at: impl Fn(usize) -> [f64; 3],
        y: (f64, f64),
    ) {
        let mut pruned = CpuGpSession::new(&grid, prior).unwrap();
        let mut full = CpuGpSession::new(&grid, prior).unwrap().with_pruning(false);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (mut xs, mut ys) = (vec![[20.0, grid.width as f64 / 2.0, grid.sizes[1] as f64]], vec![(y.0 + y.1) / 2.0]);
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        let same_maps = |pruned: &mut CpuGpSession, full: &mut CpuGpSession| {
            assert_eq!(bits(pruned.mean_map().unwrap()), bits(full.mean_map().unwrap()));
            let ((m1, s1), (m2, s2)) = (pruned.posterior().unwrap(), full.posterior().unwrap());
            assert_eq!((bits(m1), bits(s1)), (bits(m2), bits(s2)));
        };
        let mut skipped = 0;
        for step in 0..40 {
            // Reading every tile mid-run (their rows only for the read) must
            // leave the appends after it as exact: right after the search of
            // a refit (the tiles it skipped take that very pass) and after appends.
            if step == 21 || step == 30 {
                same_maps(&mut pruned, &mut full);
            }
            let ls = ls_at(step);
            let x = Array2::from_shape_fn((xs.len(), 3), |(i, d)| xs[i][d]);
            let gp = Gp::with_length_scales(x.view(), &ys, &ls, 0.01).unwrap().posterior_inputs();
            pruned.set_gp(&gp).unwrap();
            full.set_gp(&gp).unwrap();
            let kappa = kappa_at(step);
            let got = pruned.ucb_argmax(kappa).unwrap();
            let want = full.ucb_argmax(kappa).unwrap();
            assert_eq!((got.0, got.1.to_bits()), (want.0, want.1.to_bits()), "step {step}");
            // Asked again: the same answer from the stored state.
            assert_eq!(pruned.ucb_argmax(kappa).unwrap(), got);
            skipped += pruned.tiles.iter().filter(|t| t.version != pruned.version).count();
            let (r, q, si) = grid.decode(got.0);
            xs.push([
                r as f64 + rng.random_range(-0.5..0.5),
                q as f64 + rng.random_range(-0.5..0.5),
                grid.sizes[si] as f64,
            ]);
            ys.push(rng.random_range(y.0..y.1));
        }
        assert!(skipped > 0, "the bound never skipped a tile");
        let u = pruned.updates();
        assert!(u.incremental > 20 && u.full >= 5, "{u:?}");
        same_maps(&mut pruned, &mut full);
    }

    #[test]
    fn session_posterior_matches_the_f64_gp() {
        let grid = CandidateGrid::new(12, 16, vec![3, 5]);
        let prior: Vec<f32> = (0..grid.pixels()).map(|i| (i % 7) as f32 * 0.01).collect();
        let x = array![[2.0, 3.0, 3.0], [8.0, 11.0, 5.0], [5.5, 7.2, 3.4]];
        let gp = Gp::with_length_scales(x.view(), &[0.4, -0.3, 0.2], &[3.0, 4.0, 2.0], 0.01).unwrap();
        let mut sess = CpuGpSession::new(&grid, &prior).unwrap();
        sess.set_gp(&gp.posterior_inputs()).unwrap();
        let (mu, sigma) = sess.posterior().unwrap();
        for idx in [0, 37, 200, grid.len() - 1] {
            let (r, q, si) = grid.decode(idx);
            let (m, s) = gp.predict(array![[r as f64, q as f64, grid.sizes[si] as f64]].view());
            assert!((mu[idx] - (m[0] as f32 + prior[r as usize * 16 + q as usize])).abs() < 1e-5);
            assert!((sigma[idx] - s[0] as f32).abs() < 1e-4, "{} vs {}", sigma[idx], s[0]);
        }
        let (best, val) = sess.ucb_argmax(10.0).unwrap();
        let ucb: Vec<f32> = mu.iter().zip(&sigma).map(|(m, s)| m + 10.0 * s).collect();
        let want = ucb.iter().enumerate().fold((0, f32::MIN), |b, (i, v)| if *v > b.1 { (i, *v) } else { b });
        assert_eq!((best, val), want);
    }

    /// First index of the largest UCB value by a plain scan (NaN as −∞).
    fn scan_argmax(mu: &[f32], sigma: &[f32], kappa: f32) -> (usize, f32) {
        let mut best = (usize::MAX, f32::NEG_INFINITY);
        for (i, (m, s)) in mu.iter().zip(sigma).enumerate() {
            let a = m + kappa * s;
            let a = if a.is_nan() { f32::NEG_INFINITY } else { a };
            if best.0 == usize::MAX || a > best.1 {
                best = (i, a);
            }
        }
        best
    }

    #[test]
    fn block_argmax_matches_a_scan() {
        // Ties (the first wins), NaN (never wins), a remainder past the last
        // 8 lanes, runs longer than one 2048-value piece, all −∞.
        let n = 5000;
        let mut mu: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 * 0.01).collect();
        let s2: Vec<f32> = (0..n).map(|i| if i % 13 == 0 { -0.5 } else { ((i * 11) % 7) as f32 * 0.001 }).collect();
        mu[17] = f32::NAN;
        let sigma: Vec<f32> = s2.iter().map(|x| x.max(0.0).sqrt()).collect();
        for len in [1, 7, 9, 2047, 2048, 2049, n] {
            for offset in [0, 3, 100] {
                let want = scan_argmax(&mu[offset..len.max(offset + 1)], &sigma[offset..len.max(offset + 1)], 2.0);
                let got = block_argmax(&mu[offset..len.max(offset + 1)], &s2[offset..len.max(offset + 1)], 2.0, offset);
                assert_eq!(got, (want.0 + offset, want.1), "len {len}, offset {offset}");
            }
        }
        // A tie across pieces: the first piece's copy wins.
        let mut flat = vec![0.0f32; 4100];
        flat[2100] = 1.0;
        flat[4000] = 1.0;
        assert_eq!(block_argmax(&flat, &vec![0.0; 4100], 1.0, 10), (2110, 1.0));
        let nan = vec![f32::NAN; 20];
        assert_eq!(block_argmax(&nan, &nan, 1.0, 5), (5, f32::NEG_INFINITY));
    }

    #[test]
    fn fused_ucb_argmax_matches_a_scan_of_the_posterior() {
        // Full passes and appends (same length scales), each step's argmax
        // from the update pass against a scan of the posterior it leaves.
        let grid = CandidateGrid::new(20, 300, vec![2, 4]);
        let prior: Vec<f32> = (0..grid.pixels()).map(|i| ((i * 7) % 23) as f32 * 0.01).collect();
        let mut sess = CpuGpSession::new(&grid, &prior).unwrap();
        let pts = [
            [3.0, 20.0, 2.0],
            [15.0, 250.0, 4.0],
            [9.0, 140.0, 3.0],
            [0.0, 299.0, 2.0],
            [19.0, 5.0, 4.0],
            [11.0, 77.0, 2.5],
        ];
        let mut updates = 0;
        for n in 1..=pts.len() {
            let x = ndarray::Array2::from_shape_fn((n, 3), |(i, d)| pts[i][d]);
            let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
            let ls = if n < 3 { [4.0, 30.0, 1.5] } else { [5.0, 40.0, 2.0] };
            let gp = Gp::with_length_scales(x.view(), &y, &ls, 0.01).unwrap();
            sess.set_gp(&gp.posterior_inputs()).unwrap();
            let got = sess.ucb_argmax(3.0).unwrap();
            let (mu, sigma) = sess.posterior().unwrap();
            assert_eq!(got, scan_argmax(&mu, &sigma, 3.0), "n = {n}");
            // The same GP again: no update, the separate sweep.
            assert_eq!(sess.ucb_argmax(3.0).unwrap(), got);
            updates += 1;
        }
        let u = sess.updates();
        // Full at n = 1 and n = 3 (the length scales change), appends otherwise.
        assert_eq!((u.full, u.incremental), (2, updates - 2));
    }

    #[test]
    fn fast_exp_matches_libm() {
        for i in 0..17400 {
            let x = -(i as f32) * 0.005;
            let (a, b) = (exp_neg(x), x.exp());
            assert!((a - b).abs() <= 3e-7 * b + 1e-38, "exp({x}): {a} vs {b}");
        }
        assert_eq!(exp_neg(-200.0), exp_neg(-87.0));
        assert!(exp_neg(-87.0) > 0.0 && exp_neg(-87.0) < 2e-38);
    }

    #[test]
    fn window_average_by_hand() {
        let grid = CandidateGrid::new(3, 4, vec![1]);
        let m: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let out = window_average(&grid, &m);
        // corner (0, 0): mean of rows 0..2 × cols 0..2 = (0 + 1 + 4 + 5) / 4
        assert_eq!(out[0], 2.5);
        // centre (1, 1): mean of the full 3×3 block = 5
        assert_eq!(out[5], 5.0);
        assert_eq!(first_max((3, 1.0), (2, 1.0)), (2, 1.0));
        assert_eq!(first_max((3, 1.0), (9, 1.0)), (3, 1.0));
    }
}
