//! Exact optimal transport: the Wasserstein-1 distance by linear assignment (equal sizes)
//! and by a transportation problem (unequal sizes).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::{distance_matrix, point_counts};

/// Marker for "no index" in the optimal transport solvers.
const NONE: usize = usize::MAX;

/// Exact Wasserstein-1 distance between two uniform empirical distributions.
///
/// `a` holds `n = a.len() / dim` points and `b` holds `m = b.len() / dim`
/// points of dimension `dim` (row-major); each point of `a` has mass `1/n` and
/// each point of `b` mass `1/m`. The ground cost is the Euclidean distance
/// between rows, and the result is
///
/// `W1 = min_{π ∈ Π(a, b)} Σ_ij π_ij ‖a_i − b_j‖₂`,
///
/// solved exactly (no entropic regularisation):
///
/// * if `n == m`, an optimal plan is a permutation (Birkhoff), found with the
///   Jonker–Volgenant shortest augmenting path assignment algorithm,
///   `O(n³)` worst case;
/// * otherwise, with `g = gcd(n, m)`, the problem is the integer
///   transportation problem with supply `m/g` at every point of `a` and
///   demand `n/g` at every point of `b` (total mass `lcm(n, m)`), solved by
///   successive shortest paths on the bipartite network. This is faster than
///   replicating points into an `lcm × lcm` assignment problem even when
///   that one is small (e.g. 64 vs 1024 points).
///
/// The `n × m` cost matrix is computed in parallel with rayon; the solvers
/// are sequential. Single-core timings in dimension 195: 1024 × 1024 and
/// 64 × 1024 take well under a second; awkward near-square unequal sizes
/// with a small gcd (e.g. 1000 × 1024) take a few seconds.
///
/// # Panics
///
/// If `dim == 0`, if a slice is empty or its length is not a multiple of
/// `dim`, or if an input value is not finite.
pub fn wasserstein1(a: &[f64], b: &[f64], dim: usize) -> f64 {
    let (n, m) = point_counts("wasserstein1", a, b, dim);
    assert!(
        a.iter().chain(b).all(|v| v.is_finite()),
        "wasserstein1: inputs must be finite"
    );
    let cost = distance_matrix(a, b, dim);
    w1_from_cost(&cost, n, m)
}

fn gcd(mut x: usize, mut y: usize) -> usize {
    while y != 0 {
        (x, y) = (y, x % y);
    }
    x
}

/// W1 between uniform measures on `n` and `m` points from their row-major
/// `n × m` cost matrix.
fn w1_from_cost(cost: &[f64], n: usize, m: usize) -> f64 {
    if n == m {
        return assignment_cost(cost, n) / n as f64;
    }
    // Integer masses: each of the n points carries m/g units and each of the
    // m points n/g units, for a total mass of lcm(n, m). The transportation
    // solver is fastest with the larger set as rows (its row scans cost
    // O(columns)), so transpose if needed.
    let g = gcd(n, m);
    let total = (n / g * m) as f64;
    if n >= m {
        transportation_cost(cost, &vec![(m / g) as u64; n], &vec![(n / g) as u64; m]) / total
    } else {
        let mut transposed = vec![0.0; n * m];
        for (i, row) in cost.chunks_exact(m).enumerate() {
            for (j, &c) in row.iter().enumerate() {
                transposed[j * n + i] = c;
            }
        }
        transportation_cost(
            &transposed,
            &vec![(n / g) as u64; m],
            &vec![(m / g) as u64; n],
        ) / total
    }
}

/// Minimum total cost of a perfect matching in the `size × size` assignment
/// problem with row-major cost matrix `cost`.
///
/// Shortest augmenting path algorithm of Jonker & Volgenant as formulated
/// by Crouse (2016), which is also the algorithm behind SciPy's
/// `linear_sum_assignment`: rows are inserted one at a time, each by a
/// Dijkstra search on reduced costs `c_ij − u_i − v_j ≥ 0` for the shortest
/// alternating path to a free column, after which the dual variables are
/// updated so that complementary slackness holds on the new matching.
/// `O(size³)` in the worst case, much less in practice.
fn assignment_cost(cost: &[f64], size: usize) -> f64 {
    debug_assert_eq!(cost.len(), size * size);
    let mut u = vec![0.0f64; size];
    let mut v = vec![0.0f64; size];
    let mut shortest = vec![f64::INFINITY; size];
    let mut path = vec![NONE; size];
    let mut col4row = vec![NONE; size];
    let mut row4col = vec![NONE; size];
    let mut remaining = vec![0usize; size];
    let mut visited_rows = Vec::with_capacity(size);
    let mut visited_cols = Vec::with_capacity(size);

    for cur in 0..size {
        shortest.fill(f64::INFINITY);
        for (k, r) in remaining.iter_mut().enumerate() {
            *r = size - 1 - k;
        }
        visited_rows.clear();
        visited_cols.clear();
        let mut num_remaining = size;
        let mut min_val = 0.0f64;
        let mut i = cur;

        // Dijkstra over alternating paths until a free column is reached.
        let sink = loop {
            visited_rows.push(i);
            let costs = &cost[i * size..][..size];
            let ui = u[i];
            let mut lowest = f64::INFINITY;
            let mut index = NONE;
            for (it, &j) in remaining[..num_remaining].iter().enumerate() {
                let reduced = min_val + costs[j] - ui - v[j];
                if reduced < shortest[j] {
                    path[j] = i;
                    shortest[j] = reduced;
                }
                // Ties are broken in favour of free columns, which ends the
                // search sooner.
                if shortest[j] < lowest || (shortest[j] == lowest && row4col[j] == NONE) {
                    lowest = shortest[j];
                    index = it;
                }
            }
            // Finite costs always give a finite shortest path.
            min_val = lowest;
            let j = remaining[index];
            visited_cols.push(j);
            num_remaining -= 1;
            remaining[index] = remaining[num_remaining];
            if row4col[j] == NONE {
                break j;
            }
            i = row4col[j];
        };

        // Dual update.
        u[cur] += min_val;
        for &r in &visited_rows[1..] {
            u[r] += min_val - shortest[col4row[r]];
        }
        for &c in &visited_cols {
            v[c] -= min_val - shortest[c];
        }

        // Augment along the alternating path ending at `sink`.
        let mut j = sink;
        loop {
            let r = path[j];
            row4col[j] = r;
            std::mem::swap(&mut col4row[r], &mut j);
            if r == cur {
                break;
            }
        }
    }

    col4row
        .iter()
        .enumerate()
        .map(|(i, &j)| cost[i * size + j])
        .sum()
}

/// Tentative column label in the transportation solver's Dijkstra search
/// (used in a min-heap through [`Reverse`]).
#[derive(Clone, Copy, PartialEq)]
struct Label {
    dist: f64,
    /// Whether the column had no remaining demand when labelled; on equal
    /// distances, columns that can end the search are popped first.
    full: bool,
    col: usize,
}

impl Eq for Label {}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Label {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.full.cmp(&other.full))
            .then(self.col.cmp(&other.col))
    }
}

/// Minimum cost of the balanced transportation problem with row-major
/// `n × m` cost matrix, integer row supplies and column demands (equal
/// totals).
///
/// Successive shortest paths: rows with remaining supply are drained one at a
/// time; each step runs Dijkstra from the row on the residual bipartite
/// network (forward edges row → column with unbounded capacity, backward
/// edges column → row where flow is positive) using reduced costs
/// `c_ij + p_i − q_j ≥ 0`, pushes the bottleneck amount along the shortest
/// path to a column with remaining demand, and adds the distances (capped at
/// the sink's) to the node potentials `p`, `q`, which keeps every residual
/// reduced cost non-negative (Ahuja, Magnanti & Orlin 1993, §9.7). The
/// final flow satisfies complementary slackness, hence is optimal.
fn transportation_cost(cost: &[f64], supply: &[u64], demand: &[u64]) -> f64 {
    let (n, m) = (supply.len(), demand.len());
    debug_assert_eq!(cost.len(), n * m);
    debug_assert_eq!(supply.iter().sum::<u64>(), demand.iter().sum::<u64>());

    let mut net = Network::new(cost, supply, demand);
    let mut search = Search::new(n, m);
    for source in 0..n {
        while net.rem_supply[source] > 0 {
            let sink = search.shortest_path(&net, source);
            net.update_potentials(&search);
            net.augment(&search, source, sink);
        }
    }
    net.total_cost()
}

/// The residual network of [`transportation_cost`]: the flow, the masses still to send and
/// to receive, and the node potentials.
struct Network<'a> {
    cost: &'a [f64],
    m: usize,
    rem_supply: Vec<u64>,
    rem_demand: Vec<u64>,
    flow: Vec<u64>,
    /// Rows that send positive flow to each column (the backward edges).
    senders: Vec<Vec<usize>>,
    p: Vec<f64>,
    q: Vec<f64>,
}

/// One Dijkstra search of [`transportation_cost`] on the residual network, from a row.
struct Search {
    dist_row: Vec<f64>,
    /// Tentative labels of unsettled columns; settled columns hold −∞ so that
    /// row scans never relabel them (their distances are kept in `settled`).
    label: Vec<f64>,
    settled: Vec<(usize, f64)>,
    pred_row: Vec<usize>,
    pred_col: Vec<usize>,
    heap: BinaryHeap<Reverse<Label>>,
}

impl Search {
    fn new(n: usize, m: usize) -> Self {
        Self {
            dist_row: vec![f64::INFINITY; n],
            label: vec![f64::INFINITY; m],
            settled: Vec::with_capacity(m),
            pred_row: vec![NONE; n],
            pred_col: vec![NONE; m],
            heap: BinaryHeap::new(),
        }
    }

    /// Scanning a row relaxes its forward edges to all unsettled columns.
    fn scan(&mut self, net: &Network, i: usize, dist_i: f64) {
        let m = net.m;
        let base = dist_i + net.p[i];
        let costs = &net.cost[i * m..][..m];
        for (j, ((&c, &qj), lj)) in costs
            .iter()
            .zip(&net.q)
            .zip(self.label.iter_mut())
            .enumerate()
        {
            let d = base + c - qj;
            if d < *lj {
                *lj = d;
                self.pred_col[j] = i;
                self.heap.push(Reverse(Label {
                    dist: d,
                    full: net.rem_demand[j] == 0,
                    col: j,
                }));
            }
        }
    }

    /// The shortest path from row `source` to a column with remaining demand: that column.
    fn shortest_path(&mut self, net: &Network, source: usize) -> usize {
        self.dist_row.fill(f64::INFINITY);
        self.label.fill(f64::INFINITY);
        self.settled.clear();
        self.heap.clear();

        self.dist_row[source] = 0.0;
        self.scan(net, source, 0.0);
        loop {
            // Some column always has remaining demand and every column is
            // reachable from the source, so the heap cannot run dry.
            let Reverse(Label { dist, col: j, .. }) =
                self.heap.pop().expect("transportation: no augmenting path");
            if dist > self.label[j] {
                continue; // stale entry, or column already settled
            }
            self.label[j] = f64::NEG_INFINITY;
            self.settled.push((j, dist));
            if net.rem_demand[j] > 0 {
                break j;
            }
            // Backward edges have zero reduced cost.
            for &k in &net.senders[j] {
                if self.dist_row[k] == f64::INFINITY {
                    self.dist_row[k] = dist;
                    self.pred_row[k] = j;
                    self.scan(net, k, dist);
                }
            }
        }
    }
}

impl<'a> Network<'a> {
    fn new(cost: &'a [f64], supply: &[u64], demand: &[u64]) -> Self {
        let (n, m) = (supply.len(), demand.len());
        Self {
            cost,
            m,
            rem_supply: supply.to_vec(),
            rem_demand: demand.to_vec(),
            flow: vec![0u64; n * m],
            senders: vec![Vec::new(); m],
            p: vec![0.0f64; n],
            q: vec![0.0f64; m],
        }
    }

    /// Potentials: add the distances, capped at the sink's. Unsettled
    /// columns have labels ≥ the sink distance. Rounding can make the
    /// settled distances very slightly non-monotone, so settled ones
    /// are capped too: without the cap such errors would accumulate
    /// in the potentials and break the optimality conditions.
    fn update_potentials(&mut self, search: &Search) {
        let cap = search.settled.last().map_or(0.0, |&(_, d)| d);
        for (pi, &d) in self.p.iter_mut().zip(&search.dist_row) {
            *pi += d.min(cap);
        }
        for (qj, &l) in self.q.iter_mut().zip(&search.label) {
            if l != f64::NEG_INFINITY {
                *qj += cap;
            }
        }
        for &(j, d) in &search.settled {
            self.q[j] += d.min(cap);
        }
    }

    /// Pushes the bottleneck amount along the path `search` found from `source` to `sink`.
    fn augment(&mut self, search: &Search, source: usize, sink: usize) {
        let (m, pred_col, pred_row) = (self.m, &search.pred_col, &search.pred_row);
        let flow = &mut self.flow;
        // Bottleneck along the path sink ← row ← column ← … ← source.
        let mut delta = self.rem_supply[source].min(self.rem_demand[sink]);
        let mut j = sink;
        loop {
            let i = pred_col[j];
            if i == source {
                break;
            }
            j = pred_row[i];
            delta = delta.min(flow[i * m + j]);
        }

        // Push `delta` units along it.
        let mut j = sink;
        loop {
            let i = pred_col[j];
            if flow[i * m + j] == 0 {
                self.senders[j].push(i);
            }
            flow[i * m + j] += delta;
            if i == source {
                break;
            }
            j = pred_row[i];
            flow[i * m + j] -= delta;
            if flow[i * m + j] == 0 {
                self.senders[j].retain(|&k| k != i);
            }
        }
        self.rem_supply[source] -= delta;
        self.rem_demand[sink] -= delta;
    }

    /// The cost of the flow.
    fn total_cost(&self) -> f64 {
        let m = self.m;
        self.senders
            .iter()
            .enumerate()
            .flat_map(|(j, rows)| rows.iter().map(move |&i| (i, j)))
            .map(|(i, j)| self.flow[i * m + j] as f64 * self.cost[i * m + j])
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{assert_close, random_points, splitmix64};

    /// Euclidean distance, written independently of the module's helpers.
    fn naive_dist(x: &[f64], y: &[f64]) -> f64 {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// Calls `f` on every permutation of `perm[k..]` (with `perm[..k]` fixed).
    fn for_each_permutation(perm: &mut [usize], k: usize, f: &mut impl FnMut(&[usize])) {
        if k == perm.len() {
            f(perm);
            return;
        }
        for i in k..perm.len() {
            perm.swap(k, i);
            for_each_permutation(perm, k + 1, f);
            perm.swap(k, i);
        }
    }

    /// Brute-force W1 for equal sizes: by Birkhoff's theorem the optimal plan
    /// between two uniform n-point measures is a permutation, so
    /// W1 = min_σ 1/n Σ_i ‖a_i − b_σ(i)‖.
    fn brute_force_w1(a: &[f64], b: &[f64], dim: usize) -> f64 {
        let n = a.len() / dim;
        let mut perm: Vec<usize> = (0..n).collect();
        let mut best = f64::INFINITY;
        for_each_permutation(&mut perm, 0, &mut |p| {
            let total: f64 = p
                .iter()
                .enumerate()
                .map(|(i, &j)| naive_dist(&a[i * dim..][..dim], &b[j * dim..][..dim]))
                .sum();
            best = best.min(total);
        });
        best / n as f64
    }

    /// 1-D closed form W1 = ∫₀¹ |F_a⁻¹(u) − F_b⁻¹(u)| du. With sorted samples,
    /// F_a⁻¹ is constant (= a_(i)) on [i/n, (i+1)/n) and F_b⁻¹ on
    /// [j/m, (j+1)/m); the integral is a sum over the merged breakpoints,
    /// tracked exactly in units of 1/(nm).
    fn quantile_w1_1d(a: &[f64], b: &[f64]) -> f64 {
        let mut a = a.to_vec();
        let mut b = b.to_vec();
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (n, m) = (a.len(), b.len());
        let (mut i, mut j, mut t) = (0, 0, 0);
        let mut total = 0.0;
        while i < n && j < m {
            let next = ((i + 1) * m).min((j + 1) * n);
            total += (next - t) as f64 * (a[i] - b[j]).abs();
            t = next;
            if next == (i + 1) * m {
                i += 1;
            }
            if next == (j + 1) * n {
                j += 1;
            }
        }
        total / (n * m) as f64
    }

    #[test]
    fn w1_matches_brute_force_on_small_equal_sets() {
        // W1 (assignment solver) = min over permutations of the mean distance.
        for n in 2..=6 {
            for seed in 0..8 {
                let a = random_points(n, 3, 1000 * n as u64 + seed);
                let b = random_points(n, 3, 5000 * n as u64 + seed);
                let want = brute_force_w1(&a, &b, 3);
                assert_close(wasserstein1(&a, &b, 3), want, 1e-9, "w1 vs brute force");
                // The transportation solver (unit supplies and demands) solves
                // the same problem.
                let cost = distance_matrix(&a, &b, 3);
                let via_flow = transportation_cost(&cost, &vec![1; n], &vec![1; n]) / n as f64;
                assert_close(via_flow, want, 1e-9, "transportation vs brute force");
            }
        }
    }

    #[test]
    fn w1_matches_brute_force_with_ties() {
        // Points on the {0, 1}² grid give many equal costs (degenerate
        // assignment problems); W1 must still equal the brute-force minimum.
        for n in 2..=6 {
            for seed in 0..8 {
                let mut state = 77 * n as u64 + seed;
                let mut grid = |_| (splitmix64(&mut state) % 2) as f64;
                let a: Vec<f64> = (0..2 * n).map(&mut grid).collect();
                let b: Vec<f64> = (0..2 * n).map(&mut grid).collect();
                let want = brute_force_w1(&a, &b, 2);
                assert_close(wasserstein1(&a, &b, 2), want, 1e-9, "w1 with ties");
            }
        }
    }

    #[test]
    fn w1_unequal_sizes_match_1d_quantile_formula() {
        // In 1-D, W1 = ∫|F_a⁻¹ − F_b⁻¹| for any sizes n, m (unequal sizes go
        // through the transportation solver, in both orientations).
        let sizes = [
            (3, 6),
            (6, 3),
            (4, 10),
            (5, 7),
            (64, 1024),
            (67, 71),
            (1, 5),
        ];
        for (k, &(n, m)) in sizes.iter().enumerate() {
            let a = random_points(n, 1, 11 + k as u64);
            let b: Vec<f64> = random_points(m, 1, 97 + k as u64)
                .iter()
                .map(|x| 0.5 * x + 0.3)
                .collect();
            let want = quantile_w1_1d(&a, &b);
            assert_close(
                wasserstein1(&a, &b, 1),
                want,
                1e-9,
                &format!("w1 1-D {n} vs {m}"),
            );
        }
    }

    /// W1 by replication: with g = gcd(n, m), copying each point of `a`
    /// m/g times and each point of `b` n/g times gives two uniform measures
    /// on lcm(n, m) points equal to the originals, whose W1 is an assignment
    /// problem (Birkhoff) on the replicated cost matrix.
    fn replicated_assignment_w1(cost: &[f64], n: usize, m: usize) -> f64 {
        let g = gcd(n, m);
        let (rep_a, rep_b) = (m / g, n / g);
        let size = n * rep_a;
        let replicated: Vec<f64> = (0..size * size)
            .map(|k| cost[(k / size / rep_a) * m + (k % size) / rep_b])
            .collect();
        assignment_cost(&replicated, size) / size as f64
    }

    #[test]
    fn transportation_solver_matches_replicated_assignment() {
        // The transportation solver (both orientations, via w1_from_cost and
        // directly) and the assignment solver on replicated points compute
        // the same optimal transport cost between uniform measures.
        for (k, &(n, m)) in [(3, 6), (4, 10), (12, 18), (30, 45), (7, 13), (40, 8)]
            .iter()
            .enumerate()
        {
            let a = random_points(n, 3, 300 + k as u64);
            let b = random_points(m, 3, 400 + k as u64);
            let cost = distance_matrix(&a, &b, 3);
            let want = replicated_assignment_w1(&cost, n, m);
            let label = format!("{n} vs {m}");
            assert_close(w1_from_cost(&cost, n, m), want, 1e-9, &label);
            let g = gcd(n, m);
            let direct =
                transportation_cost(&cost, &vec![(m / g) as u64; n], &vec![(n / g) as u64; m])
                    / (n / g * m) as f64;
            assert_close(direct, want, 1e-9, &label);
        }
    }

    #[test]
    fn w1_unequal_sizes_with_ties_match_1d_quantile_formula() {
        // Same closed form on coarse 1-D grids (many equal costs and
        // degenerate optimal plans), over many size pairs in both
        // orientations; this stresses the transportation solver's potential
        // updates under rounding.
        let mut state = 2024;
        for n in [1, 2, 3, 5, 8, 13, 16, 31, 64, 100] {
            for m in [4, 7, 12, 64, 96, 257] {
                if n == m {
                    continue;
                }
                let levels = 1 + splitmix64(&mut state) % 20;
                let mut grid = |_| (splitmix64(&mut state) % levels) as f64 / levels as f64;
                let a: Vec<f64> = (0..n).map(&mut grid).collect();
                let b: Vec<f64> = (0..m).map(&mut grid).collect();
                let want = quantile_w1_1d(&a, &b);
                assert_close(wasserstein1(&a, &b, 1), want, 1e-9, &format!("{n} vs {m}"));
                assert_close(wasserstein1(&b, &a, 1), want, 1e-9, &format!("{m} vs {n}"));
            }
        }
    }

    #[test]
    fn w1_is_zero_on_identical_sets_and_symmetric() {
        // W1(a, a) = 0 (identity plan); W1(a, b) = W1(b, a) (transpose plan).
        let a = random_points(50, 4, 1);
        let b = random_points(20, 4, 2);
        let c = random_points(50, 4, 3);
        assert_eq!(wasserstein1(&a, &a, 4), 0.0);
        assert_close(
            wasserstein1(&a, &b, 4),
            wasserstein1(&b, &a, 4),
            1e-12,
            "symmetry (unequal sizes)",
        );
        assert_close(
            wasserstein1(&a, &c, 4),
            wasserstein1(&c, &a, 4),
            1e-12,
            "symmetry (equal sizes)",
        );
        // A set against itself listed twice is the same measure: W1 = 0.
        let aa = [a.clone(), a.clone()].concat();
        assert!(wasserstein1(&a, &aa, 4).abs() < 1e-12);
    }

    #[test]
    fn w1_of_translated_single_points() {
        // δ_x vs δ_y: W1 = ‖x − y‖ = 5 for a 3-4-5 triangle.
        assert_eq!(wasserstein1(&[0.0, 0.0], &[3.0, 4.0], 2), 5.0);
    }

    #[test]
    #[should_panic(expected = "not multiples of dim")]
    fn w1_rejects_ragged_input() {
        wasserstein1(&[0.0, 1.0, 2.0], &[0.0, 1.0], 2);
    }
}
