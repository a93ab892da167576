//! Work spread over the machine's cores within one stage instance. A stage whose state is split
//! by partition (the alarm windows: one engine per partition) hands each partition's share of a
//! batch to [`Workers::spread`], which runs the shares side by side on the stage's own pool of
//! threads (rayon) and returns their results in order. Nothing is shared between shares, so the
//! outcome is the same as running them one after the other.
//!
//! The threads live as long as the stage: starting threads per batch would cost more than the
//! work of a small batch, and each new thread starts its allocator's heap afresh.

use rayon::iter::{IndexedParallelIterator, IntoParallelIterator, ParallelIterator};
use std::num::NonZeroUsize;

/// The machine's cores: what a stage uses when its config asks for 0 (`auto`) threads.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// A stage's worker threads (none when it runs on one).
#[derive(Debug)]
pub struct Workers {
    pool: Option<rayon::ThreadPool>,
}

impl Workers {
    /// `threads` workers named `lux-<stage>-<i>` (0: one per core). With one, or if the system
    /// refuses to start threads (logged), the work runs on the caller's thread.
    pub fn new(stage: &str, threads: usize) -> Workers {
        let threads = if threads == 0 { available_threads() } else { threads };
        if threads <= 1 {
            return Workers { pool: None };
        }
        let name = stage.to_owned();
        match rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("lux-{name}-{i}"))
            .build()
        {
            Ok(pool) => Workers { pool: Some(pool) },
            Err(error) => {
                tracing::warn!(stage, threads, %error, "cannot start the stage's worker threads; it runs on one");
                Workers { pool: None }
            }
        }
    }

    /// How many threads the work is spread over.
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, rayon::ThreadPool::current_num_threads)
    }

    /// Runs `work` on every item and returns the results in the items' order: side by side on
    /// the workers when there are several of both, else here one after the other. A panic in
    /// `work` is resumed on the calling thread.
    pub fn spread<T, R, F>(&self, items: Vec<T>, work: F) -> Vec<R>
    where
        T: Send,
        R: Send,
        F: Fn(T) -> R + Sync + Send,
    {
        match &self.pool {
            Some(pool) if items.len() > 1 => pool.install(|| items.into_par_iter().with_max_len(1).map(work).collect()),
            _ => items.into_iter().map(work).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_items_order_whatever_the_threads() {
        let items: Vec<u64> = (0..37).collect();
        let expected: Vec<u64> = items.iter().map(|i| i * i).collect();
        for threads in [1, 2, 3, 8] {
            let workers = Workers::new("test", threads);
            assert_eq!(workers.threads(), threads);
            assert_eq!(workers.spread(items.clone(), |i| i * i), expected, "{threads} threads");
            assert!(workers.spread(Vec::<u64>::new(), |i| i).is_empty());
        }
        assert_eq!(Workers::new("test", 0).threads(), available_threads());
    }

    #[test]
    fn items_run_side_by_side_on_the_workers() {
        let workers = Workers::new("test", 2);
        let barrier = std::sync::Barrier::new(2);
        // Each of the two items waits for the other: they finish only if they run at once.
        let names = workers.spread(vec![0, 1], |_| {
            barrier.wait();
            std::thread::current().name().map(str::to_owned)
        });
        let distinct: std::collections::BTreeSet<_> = names.iter().flatten().collect();
        assert_eq!(distinct.len(), 2, "{names:?}");
        assert!(distinct.iter().all(|n| n.starts_with("lux-test-")), "{names:?}");
    }
}
