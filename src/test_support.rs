//! Helpers shared by the crate's unit tests.

use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing::subscriber::DefaultGuard;

/// Log lines written while a test's subscriber is the default.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut v) => v.extend_from_slice(buf),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        let bytes = match self.0.lock() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Captures this thread's logs up to `level` until the guard drops.
    pub(crate) fn install(level: tracing::Level) -> (Captured, DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // Other tests run in parallel threads; without a global subscriber a callsite
        // one of them registers (or a cache rebuild another test triggers) at the wrong
        // moment can cache "never" and hide events from this thread's subscriber. A
        // global subscriber that is interested in everything and keeps nothing means no
        // callsite is ever cached as "never"; events still go to this thread's default.
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        (captured, guard)
    }
}

/// Resolves the first server of a local-mode manifest text (servers and Secrets) into
/// the view the data plane would serve.
pub(crate) fn resolve_view(text: &str) -> Arc<crate::core::server::ServerView> {
    use crate::core::catalog::Catalog;
    use crate::k8s::resolve::{self, ResolveOptions};
    use crate::local::manifest::{self, Manifests};
    let mut m = Manifests::default();
    manifest::parse_into(text, "t.yaml", &mut m);
    let server = m.servers.first().expect("a server");
    let catalog = Catalog::builtin().expect("catalog");
    let view = resolve::resolve(
        server,
        &m,
        &catalog,
        jiff::Timestamp::now(),
        &ResolveOptions::default(),
    )
    .view
    .expect("resolves");
    Arc::new(view)
}
