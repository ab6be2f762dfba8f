//! Merging window blobs: summing counts per trace id.
//!
//! Trace ids are handed out in order and collected from the oldest, so the
//! ids in use are usually a compact range: then the sums live in an array
//! indexed by id, the cheapest possible update. A store whose traces span
//! more ids uses a hash map.
//!
//! Decompressing and decoding the blobs is most of a long merge, and each
//! blob is independent: with many windows, the blobs read from SQLite on
//! the query's thread are handed round-robin to worker threads, each
//! summing into its own merger, and the mergers are added up at the end.
//! Sums do not depend on the order they are made in, so the result is the
//! same as one thread's.

use std::sync::mpsc;

use rusqlite::Connection;

use crate::cache::IdMap;
use crate::codec::BlobDecoder;
use crate::error::{Error, SqlContext};

/// Id ranges up to this size are merged in a dense array (8 MiB).
const MAX_DENSE: i64 = 1 << 20;

/// Fewer windows than this are merged on the query's thread: starting
/// workers would cost more than it saves.
const MIN_PARALLEL_WINDOWS: u64 = 32;

/// Most worker threads one merge uses.
const MAX_WORKERS: usize = 4;

/// Blobs queued per worker before the reader waits.
const QUEUE: usize = 16;

/// The trace ids of the current snapshot: `first..=last`, if dense.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceIds(Option<(i64, i64)>);

impl TraceIds {
    /// The range of trace ids in the store, as the current transaction sees it.
    pub(crate) fn of(conn: &Connection) -> Result<Self, Error> {
        let (first, last): (Option<i64>, Option<i64>) = conn
            .query_row("SELECT min(id), max(id) FROM dict_trace", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .ctx("reading the trace id range")?;
        Ok(TraceIds(match (first, last) {
            (Some(first), Some(last)) if (0..MAX_DENSE).contains(&(last - first)) => {
                Some((first, last))
            }
            _ => None,
        }))
    }
}

/// Sums counts per trace id (see the module docs).
pub(crate) enum Merger {
    Dense {
        first: i64,
        counts: Vec<u64>,
        /// Ids outside the range (none, unless the store is damaged).
        others: IdMap<u64>,
    },
    Sparse(IdMap<u64>),
}

impl Merger {
    /// An empty merger for `ids`.
    pub(crate) fn new(ids: TraceIds) -> Self {
        match ids.0 {
            Some((first, last)) => Merger::Dense {
                first,
                counts: vec![0; (last - first + 1) as usize],
                others: IdMap::default(),
            },
            None => Merger::Sparse(IdMap::default()),
        }
    }

    #[inline]
    fn add(&mut self, id: i64, count: u64) {
        let slot = match self {
            Merger::Dense {
                first,
                counts,
                others,
            } => match usize::try_from(id - *first)
                .ok()
                .and_then(|i| counts.get_mut(i))
            {
                Some(slot) => slot,
                None => others.entry(id).or_insert(0),
            },
            Merger::Sparse(map) => map.entry(id).or_insert(0),
        };
        *slot = slot.saturating_add(count);
    }

    /// Adds the sums of `other` to these.
    fn absorb(&mut self, other: Merger) {
        match (self, other) {
            (
                Merger::Dense {
                    first,
                    counts,
                    others,
                },
                Merger::Dense {
                    first: other_first,
                    counts: other_counts,
                    others: other_others,
                },
            ) if *first == other_first && counts.len() == other_counts.len() => {
                for (sum, count) in counts.iter_mut().zip(other_counts) {
                    *sum = sum.saturating_add(count);
                }
                for (id, count) in other_others {
                    let slot = others.entry(id).or_insert(0);
                    *slot = slot.saturating_add(count);
                }
            }
            (this, other) => {
                for (id, count) in other.into_sorted() {
                    this.add(id, count);
                }
            }
        }
    }

    /// The non-zero sums, by ascending id.
    pub(crate) fn into_sorted(self) -> Vec<(i64, u64)> {
        let mut sums: Vec<(i64, u64)> = match self {
            Merger::Dense {
                first,
                counts,
                others,
            } => counts
                .into_iter()
                .zip(first..)
                .map(|(count, id)| (id, count))
                .chain(others)
                .collect(),
            Merger::Sparse(map) => map.into_iter().collect(),
        };
        sums.retain(|&(_, count)| count > 0);
        sums.sort_unstable();
        sums
    }
}

/// One thread's share of a merge: its decoder, its sums, and the windows
/// whose blobs it could not decode.
struct Part {
    decoder: BlobDecoder,
    merger: Merger,
    damaged: Vec<i64>,
}

impl Part {
    fn new(ids: TraceIds) -> Result<Self, Error> {
        Ok(Part {
            decoder: BlobDecoder::new().map_err(|source| Error::Zstd { source })?,
            merger: Merger::new(ids),
            damaged: Vec::new(),
        })
    }

    /// Adds the traces of window `id`'s blob, or notes it as damaged.
    fn add(&mut self, id: i64, blob: Option<&[u8]>) {
        match blob.map(|b| self.decoder.decode(b)) {
            Some(Ok(traces)) => {
                for &(trace, count) in traces {
                    self.merger.add(trace, count);
                }
            }
            _ => self.damaged.push(id),
        }
    }
}

/// What a merge found: the sums and the windows whose blobs are damaged.
pub(crate) struct Merged {
    pub(crate) sums: Merger,
    pub(crate) damaged: Vec<i64>,
}

/// Sums the blobs `feed` hands over (window id, blob if the column holds
/// one) for a query over `windows` windows: on worker threads when there
/// are enough of them, else here. `feed` runs on the calling thread.
pub(crate) fn merge(
    ids: TraceIds,
    windows: u64,
    feed: impl FnOnce(&mut dyn FnMut(i64, Option<&[u8]>)) -> Result<(), Error>,
) -> Result<Merged, Error> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS);
    if workers < 2 || windows < MIN_PARALLEL_WINDOWS {
        return merge_here(ids, feed);
    }
    std::thread::scope(|scope| {
        let mut queues = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (queue, blobs) = mpsc::sync_channel::<(i64, Option<Vec<u8>>)>(QUEUE);
            let worker = std::thread::Builder::new()
                .name("scorch-merge".into())
                .spawn_scoped(scope, move || -> Result<Part, Error> {
                    let mut part = Part::new(ids)?;
                    for (id, blob) in blobs {
                        part.add(id, blob.as_deref());
                    }
                    Ok(part)
                });
            // No thread to be had (a process at its limit): merge with
            // the ones there are, or here.
            let Ok(worker) = worker else { break };
            queues.push(queue);
            threads.push(worker);
        }
        if threads.is_empty() {
            return merge_here(ids, feed);
        }
        let mut next = 0;
        let fed = feed(&mut |id, blob| {
            // A worker that failed to start has hung up; its error is
            // reported when it is joined below.
            let _ = queues[next % queues.len()].send((id, blob.map(<[u8]>::to_vec)));
            next += 1;
        });
        drop(queues);
        let mut merged = Merged {
            sums: Merger::new(ids),
            damaged: Vec::new(),
        };
        for thread in threads {
            let part = thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            merged.sums.absorb(part.merger);
            merged.damaged.extend(part.damaged);
        }
        fed?;
        Ok(merged)
    })
}

/// [`merge`] on the calling thread alone.
fn merge_here(
    ids: TraceIds,
    feed: impl FnOnce(&mut dyn FnMut(i64, Option<&[u8]>)) -> Result<(), Error>,
) -> Result<Merged, Error> {
    let mut part = Part::new(ids)?;
    feed(&mut |id, blob| part.add(id, blob))?;
    Ok(Merged {
        sums: part.merger,
        damaged: part.damaged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::BlobEncoder;

    #[test]
    fn worker_threads_sum_as_the_calling_thread_does() {
        let mut encoder = BlobEncoder::new(1).unwrap();
        let mut seed = 7u64;
        let blobs: Vec<Vec<u8>> = (0..200)
            .map(|w| {
                if w == 50 {
                    return b"damaged".to_vec();
                }
                let mut traces: Vec<(i64, u64)> = (0..300)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (1 + (seed >> 33) as i64 % 5000, 1 + (seed >> 20) % 9)
                    })
                    .collect();
                traces.sort_unstable();
                traces.dedup_by_key(|t| t.0);
                encoder.encode(&traces).unwrap()
            })
            .collect();
        let feed = |sink: &mut dyn FnMut(i64, Option<&[u8]>)| {
            for (id, blob) in blobs.iter().enumerate() {
                sink(id as i64, Some(blob));
            }
            sink(999, None);
            Ok(())
        };
        for ids in [TraceIds(Some((1, 5000))), TraceIds(None)] {
            let here = merge_here(ids, feed).unwrap();
            let spread = merge(ids, blobs.len() as u64, feed).unwrap();
            let mut damaged = spread.damaged.clone();
            damaged.sort_unstable();
            assert_eq!(damaged, vec![50, 999]);
            assert_eq!(here.damaged, vec![50, 999]);
            let sums = here.sums.into_sorted();
            assert!(sums.len() > 4000, "{}", sums.len());
            assert_eq!(spread.sums.into_sorted(), sums);
        }
    }

    #[test]
    fn absorbing_adds_sums_whatever_the_kinds_of_merger() {
        let dense = |pairs: &[(i64, u64)]| {
            let mut m = Merger::new(TraceIds(Some((10, 20))));
            for &(id, c) in pairs {
                m.add(id, c);
            }
            m
        };
        let sparse = |pairs: &[(i64, u64)]| {
            let mut m = Merger::new(TraceIds(None));
            for &(id, c) in pairs {
                m.add(id, c);
            }
            m
        };
        let expected = vec![(5, 1), (10, 3), (12, 4), (20, 6), (99, 2)];
        let a = [(10, 1), (12, 4), (5, 1)];
        let b = [(10, 2), (20, 6), (99, 2)];
        for (mut x, y) in [
            (dense(&a), dense(&b)),
            (dense(&a), sparse(&b)),
            (sparse(&a), dense(&b)),
            (sparse(&a), sparse(&b)),
        ] {
            x.absorb(y);
            assert_eq!(x.into_sorted(), expected);
        }
        let mut full = dense(&[(10, u64::MAX)]);
        full.absorb(dense(&[(10, 1)]));
        assert_eq!(full.into_sorted(), vec![(10, u64::MAX)], "saturates");
    }
}
