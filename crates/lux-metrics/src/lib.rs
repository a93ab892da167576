//! LUX metrics: a [`Registry`] of collectors rendered in the Prometheus text exposition format
//! (version 0.0.4, [`Exposition`]), and the `/metrics` HTTP endpoint ([`serve`]) that every
//! long-running `lux` process runs on a small tokio thread of its own. Collectors read what the
//! stages publish (atomic counters, snapshots): a scrape never blocks a stage.

mod config;
mod exposition;
mod server;

pub use config::MetricsConfig;
pub use exposition::{escape_help, escape_label_value, sanitize_name, Exposition, Kind};
pub use server::{serve, MetricsServer};

use std::sync::{Arc, Mutex};

/// Something that writes metric families into an exposition (called at each scrape).
pub trait Collect: Send + Sync {
    fn collect(&self, out: &mut Exposition);
}

impl<F: Fn(&mut Exposition) + Send + Sync> Collect for F {
    fn collect(&self, out: &mut Exposition) {
        self(out)
    }
}

/// The collectors of a process.
#[derive(Default)]
pub struct Registry {
    collectors: Mutex<Vec<Arc<dyn Collect>>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds a collector; it is called at every scrape from then on.
    pub fn register(&self, collector: Arc<dyn Collect>) {
        self.collectors.lock().unwrap_or_else(|p| p.into_inner()).push(collector);
    }

    /// Every collector's families, in the text exposition format.
    pub fn render(&self) -> String {
        let collectors = self.collectors.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut out = Exposition::new();
        for collector in collectors {
            collector.collect(&mut out);
        }
        out.render()
    }
}
