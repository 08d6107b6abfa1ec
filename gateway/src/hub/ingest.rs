//! From the BLE layer to the store: measurements committed in groups, each acknowledged to its
//! session only after the commit that holds it.
//!
//! Whatever arrived while the previous commit ran goes into the next one (up to
//! [`MAX_BATCH`]): one fsync for many measurements when devices are busy, one per measurement
//! when they are not. When a commit fails (full disk, locked database), the batch is kept in
//! memory and retried with a growing delay; its sessions are not acknowledged, so a glucose
//! meter keeps its records for the next catch-up, and nothing received is dropped while the
//! hub runs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::ble::session::{Delivery, Event};
use crate::ble::supervisor::{Report, Status};
use crate::store::{Committed, Store, StoreError};

/// Most measurements in one transaction.
pub const MAX_BATCH: usize = 512;

/// The store, shared by the hub's tasks (one connection; SQLite serialises writers anyway).
pub type SharedStore = Arc<Mutex<Store>>;

/// Runs `f` on the store in a blocking thread.
pub async fn with_store<T: Send + 'static>(
    store: &SharedStore,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let mut guard = store
            .lock()
            .map_err(|_| StoreError::Invalid("the store lock is poisoned".into()))?;
        f(&mut guard)
    })
    .await
    .map_err(|e| StoreError::Invalid(format!("store task: {e}")))?
}

/// What the ingest loop tells the rest of the hub.
#[derive(Debug, Clone)]
pub enum Ingested {
    /// A batch was committed: `stored` new measurements, `duplicates` already stored, in
    /// `took` (notification to commit of the oldest).
    Committed {
        /// New measurements.
        stored: usize,
        /// Already stored.
        duplicates: usize,
        /// From the first delivery's reception to the commit's return.
        took: Duration,
    },
    /// A commit failed; the batch is kept and retried.
    Failing(String),
    /// A supervisor status or a live value, passed on.
    Report(Arc<Status>),
}

/// Measurements waiting for their commit, and their sessions' acceptances, in order.
#[derive(Default)]
struct Batch {
    deliveries: Vec<Delivery>,
    acceptances: Vec<oneshot::Sender<bool>>,
    oldest: Option<Instant>,
}

impl Batch {
    fn len(&self) -> usize {
        self.deliveries.len()
    }

    fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
    }

    fn accept_all(&mut self) {
        for accepted in self.acceptances.drain(..) {
            // A session that gave up waiting is gone; the measurement is stored anyway.
            let _ = accepted.send(true);
        }
        self.deliveries.clear();
        self.oldest = None;
    }
}

/// Commits the batch's deliveries; they come back either way (kept for a retry on failure).
async fn commit(
    store: &SharedStore,
    deliveries: Vec<Delivery>,
) -> (Vec<Delivery>, Result<Vec<Committed>, StoreError>) {
    let store = Arc::clone(store);
    let joined = tokio::task::spawn_blocking(move || {
        let result = match store.lock() {
            Ok(mut store) => store.commit(&deliveries),
            Err(_) => Err(StoreError::Invalid("the store lock is poisoned".into())),
        };
        (deliveries, result)
    })
    .await;
    match joined {
        Ok(done) => done,
        // The blocking task cannot be cancelled; a panic in it lost the batch's copy.
        Err(e) => (
            Vec::new(),
            Err(StoreError::Invalid(format!("store task: {e}"))),
        ),
    }
}

/// Consumes the supervisor's reports until they end, committing measurements. Statuses are
/// noted in the store (devices seen become mappable) and forwarded on `notify`.
pub async fn run(
    store: SharedStore,
    mut reports: mpsc::Receiver<Report>,
    notify: Option<mpsc::Sender<Ingested>>,
) {
    let notify = |event: Ingested| {
        if let Some(n) = &notify
            && n.try_send(event).is_err()
        {
            tracing::debug!("ingest notification dropped (nobody listening or too slow)");
        }
    };
    let mut batch = Batch::default();
    let mut retry_delay = Duration::from_millis(100);
    loop {
        if batch.is_empty() {
            let Some(report) = reports.recv().await else {
                break;
            };
            take(report, &mut batch, &store, &notify).await;
        }
        while batch.len() < MAX_BATCH {
            match reports.try_recv() {
                Ok(report) => take(report, &mut batch, &store, &notify).await,
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let (deliveries, result) = commit(&store, std::mem::take(&mut batch.deliveries)).await;
        batch.deliveries = deliveries;
        match result {
            Ok(results) => {
                let duplicates = results
                    .iter()
                    .filter(|r| matches!(r, Committed::Duplicate { .. }))
                    .count();
                let stored = results.len().saturating_sub(duplicates);
                let took = batch.oldest.map_or(Duration::ZERO, |t| t.elapsed());
                batch.accept_all();
                retry_delay = Duration::from_millis(100);
                notify(Ingested::Committed {
                    stored,
                    duplicates,
                    took,
                });
            }
            Err(e) => {
                tracing::error!(
                    waiting = batch.len(),
                    "cannot commit measurements, keeping them and retrying in {retry_delay:?}: {e}"
                );
                notify(Ingested::Failing(e.to_string()));
                tokio::time::sleep(retry_delay).await;
                retry_delay = (retry_delay * 2).min(Duration::from_secs(30));
            }
        }
    }
    // The reports ended (the hub stops): what is still held is committed once more.
    if !batch.is_empty() {
        let (deliveries, result) = commit(&store, std::mem::take(&mut batch.deliveries)).await;
        if let Err(e) = result {
            tracing::error!(
                lost = deliveries.len(),
                "measurements not committed at shutdown: {e}"
            );
        } else {
            batch.accept_all();
        }
    }
}

async fn take(report: Report, batch: &mut Batch, store: &SharedStore, notify: &impl Fn(Ingested)) {
    match report {
        Report::Session(Event::Measurement { delivery, accepted }) => {
            batch.deliveries.push(*delivery);
            batch.acceptances.push(accepted);
            batch.oldest.get_or_insert_with(Instant::now);
        }
        Report::Session(Event::Skipped {
            address,
            characteristic,
            reason,
        }) => {
            tracing::warn!(%address, "value of 0x{characteristic:04X} skipped: {reason}");
        }
        Report::Session(Event::CatchUp { address, expected }) => {
            tracing::info!(%address, expected, "catching up stored glucose records");
        }
        Report::Session(Event::Live { .. }) => {}
        Report::Status(status) => {
            if let Status::Connected { device, kind } = &status {
                let (device, kind) = (device.clone(), *kind);
                // A connected device becomes mappable to members before it sends anything.
                if let Err(e) = with_store(store, move |s| s.note_device(&device, kind)).await {
                    tracing::warn!("device not recorded: {e}");
                }
            }
            if let Status::Seen(seen) = &status {
                let (address, paired) = (seen.address.clone(), seen.paired);
                if let Err(e) = with_store(store, move |s| s.set_bonded(&address, paired)).await {
                    tracing::debug!("bond state not recorded: {e}");
                }
            }
            notify(Ingested::Report(Arc::new(status)));
        }
    }
}
