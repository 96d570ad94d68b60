//! Per-server counters for `mcp_oauth_stats`: calls, errors by SQLSTATE,
//! refreshes, sign-ins, the last success and failure, and latency (mean and
//! p95). A fixed-size table of plain values, so that the extension can keep
//! it in shared memory (one for the cluster, when preloaded) or per backend,
//! and update it under a lock in well under a microsecond: no allocation,
//! no table write per call.

/// Servers tracked; past this, the least recently used slot is reused.
pub const SERVERS: usize = 512;
/// Distinct SQLSTATEs counted per server; others count under `XXXXX`.
pub const CODES: usize = 8;
/// Latency buckets: the first ends at 50 µs, each next one 25% later; the
/// last (about 19 minutes) takes everything longer.
pub const BUCKETS: usize = 64;
const FIRST_BOUND_US: f64 = 50.0;
const GROWTH: f64 = 1.25;

/// One server's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct ServerStats {
    pub id: [u8; 16],
    /// When this slot was last written (unix µs); 0: free.
    pub touched_us: i64,
    pub calls: u64,
    pub errors: u64,
    pub codes: [[u8; 5]; CODES],
    pub code_counts: [u64; CODES],
    pub refreshes: u64,
    pub sign_ins: u64,
    pub last_success_us: i64,
    pub last_failure_us: i64,
    pub latency_sum_us: u64,
    pub buckets: [u32; BUCKETS],
}

impl ServerStats {
    const EMPTY: Self = Self {
        id: [0; 16],
        touched_us: 0,
        calls: 0,
        errors: 0,
        codes: [[0; 5]; CODES],
        code_counts: [0; CODES],
        refreshes: 0,
        sign_ins: 0,
        last_success_us: 0,
        last_failure_us: 0,
        latency_sum_us: 0,
        buckets: [0; BUCKETS],
    };

    pub fn mean_latency_us(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.latency_sum_us as f64 / self.calls as f64)
    }

    /// The 95th percentile of call latency: the upper bound of the bucket
    /// it falls in (so at most 25% above the true value).
    pub fn p95_latency_us(&self) -> Option<f64> {
        let total: u64 = self.buckets.iter().map(|&n| u64::from(n)).sum();
        if total == 0 {
            return None;
        }
        let wanted = (total * 95).div_ceil(100);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= wanted {
                return Some(bucket_bound_us(i));
            }
        }
        Some(bucket_bound_us(BUCKETS - 1))
    }

    /// Errors by SQLSTATE, most frequent first.
    pub fn errors_by_sqlstate(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .codes
            .iter()
            .zip(self.code_counts)
            .filter(|(_, n)| *n > 0)
            .map(|(code, n)| (String::from_utf8_lossy(code).into_owned(), n))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    fn count_error(&mut self, sqlstate: &str) {
        let code: [u8; 5] = sqlstate.as_bytes().try_into().unwrap_or(*b"XXXXX");
        let slot = match self.codes.iter().position(|c| *c == code) {
            Some(i) => i,
            None => match self.code_counts.iter().position(|&n| n == 0) {
                Some(i) => i,
                // No room left: count it with the rarest code kept.
                None => (0..CODES).min_by_key(|&i| self.code_counts[i]).unwrap_or(0),
            },
        };
        if self.code_counts[slot] == 0 {
            self.codes[slot] = code;
        }
        self.code_counts[slot] += 1;
    }
}

fn bucket_bound_us(i: usize) -> f64 {
    FIRST_BOUND_US * GROWTH.powi(i as i32)
}

fn bucket_of(latency_us: u64) -> usize {
    let mut bound = FIRST_BOUND_US;
    for i in 0..BUCKETS - 1 {
        if (latency_us as f64) <= bound {
            return i;
        }
        bound *= GROWTH;
    }
    BUCKETS - 1
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome<'a> {
    Success,
    Failure { sqlstate: &'a str },
}

/// Every server's counters.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct StatsTable {
    pub servers: [ServerStats; SERVERS],
}

impl Default for StatsTable {
    fn default() -> Self {
        Self { servers: [ServerStats::EMPTY; SERVERS] }
    }
}

impl StatsTable {
    /// The slot of server `id`, taken (from the least recently used) if it
    /// has none. Open addressing from the id's first bytes, probing a few
    /// slots: ids are random.
    fn slot(&mut self, id: [u8; 16], now_us: i64) -> &mut ServerStats {
        const PROBES: usize = 8;
        let home = u64::from_le_bytes(id[..8].try_into().expect("8 bytes")) as usize % SERVERS;
        let probe = |k: usize| (home + k) % SERVERS;
        let found = (0..PROBES).map(probe).find(|&i| self.servers[i].touched_us != 0 && self.servers[i].id == id);
        let index = found.unwrap_or_else(|| {
            let free = (0..PROBES).map(probe).find(|&i| self.servers[i].touched_us == 0);
            let index = free.unwrap_or_else(|| (0..PROBES).map(probe).min_by_key(|&i| self.servers[i].touched_us).unwrap_or(home));
            self.servers[index] = ServerStats { id, ..ServerStats::EMPTY };
            index
        });
        let stats = &mut self.servers[index];
        stats.touched_us = now_us.max(1);
        stats
    }

    pub fn record_call(&mut self, id: [u8; 16], now_us: i64, latency_us: u64, outcome: CallOutcome<'_>) {
        let stats = self.slot(id, now_us);
        stats.calls += 1;
        stats.latency_sum_us = stats.latency_sum_us.saturating_add(latency_us);
        let bucket = &mut stats.buckets[bucket_of(latency_us)];
        *bucket = bucket.saturating_add(1);
        match outcome {
            CallOutcome::Success => stats.last_success_us = now_us,
            CallOutcome::Failure { sqlstate } => {
                stats.errors += 1;
                stats.last_failure_us = now_us;
                stats.count_error(sqlstate);
            }
        }
    }

    pub fn record_refresh(&mut self, id: [u8; 16], now_us: i64) {
        self.slot(id, now_us).refreshes += 1;
    }

    pub fn record_sign_in(&mut self, id: [u8; 16], now_us: i64) {
        self.slot(id, now_us).sign_ins += 1;
    }

    /// The servers with counters.
    pub fn servers(&self) -> impl Iterator<Item = &ServerStats> {
        self.servers.iter().filter(|s| s.touched_us != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> [u8; 16] {
        let mut id = [n; 16];
        id[15] = 0xee;
        id
    }

    #[test]
    fn calls_errors_and_latency_per_server() {
        let mut table = StatsTable::default();
        for i in 0..100u64 {
            let outcome = if i % 10 == 0 { CallOutcome::Failure { sqlstate: "MC005" } } else { CallOutcome::Success };
            table.record_call(id(1), 1_000 + i as i64, 100 + i * 10, outcome);
        }
        table.record_call(id(1), 2_000, 500, CallOutcome::Failure { sqlstate: "MC007" });
        table.record_refresh(id(1), 2_001);
        table.record_sign_in(id(2), 2_002);
        let one = table.servers().find(|s| s.id == id(1)).unwrap();
        assert_eq!((one.calls, one.errors, one.refreshes, one.sign_ins), (101, 11, 1, 0));
        assert_eq!(one.errors_by_sqlstate(), vec![("MC005".to_owned(), 10), ("MC007".to_owned(), 1)]);
        assert_eq!((one.last_success_us, one.last_failure_us), (1_099, 2_000));
        let mean = one.mean_latency_us().unwrap();
        assert!((mean - (10_000.0 + 10.0 * 4950.0 + 500.0) / 101.0).abs() < 1e-6, "{mean}");
        // True p95: the 96th of 101 latencies, 1030 µs; the bucket bound is within 25% above.
        let p95 = one.p95_latency_us().unwrap();
        assert!((1030.0..=1030.0 * 1.25).contains(&p95), "{p95}");
        assert_eq!(table.servers().count(), 2);
        assert_eq!(table.servers().find(|s| s.id == id(2)).unwrap().sign_ins, 1);
    }

    #[test]
    fn a_full_table_reuses_the_least_recently_used_slot() {
        let mut table = StatsTable::default();
        for n in 0..(SERVERS as u32 + 50) {
            let mut server = [0u8; 16];
            server[..4].copy_from_slice(&n.to_le_bytes());
            table.record_call(server, 1 + i64::from(n), 10, CallOutcome::Success);
        }
        assert_eq!(table.servers().count(), SERVERS);
        let newest = {
            let mut s = [0u8; 16];
            s[..4].copy_from_slice(&(SERVERS as u32 + 49).to_le_bytes());
            s
        };
        assert!(table.servers().any(|s| s.id == newest));
    }

    #[test]
    fn more_sqlstates_than_slots_still_count_every_error() {
        let mut table = StatsTable::default();
        for (i, code) in ["MC001", "MC002", "MC003", "MC004", "MC005", "MC006", "MC007", "MC008", "42704", "x"].iter().enumerate() {
            table.record_call(id(3), i as i64 + 1, 10, CallOutcome::Failure { sqlstate: code });
        }
        let stats = table.servers().next().unwrap();
        assert_eq!(stats.errors, 10);
        assert_eq!(stats.errors_by_sqlstate().iter().map(|(_, n)| n).sum::<u64>(), 10);
    }
}
