//! CCCDs of bonded peers, kept across connections (Core Vol 3, Part G, 3.3.3.3: a bonded
//! client's configuration persists across connections; an unbonded client's resets).
//!
//! The store lives in RAM. A board that must keep bonds across reset persists
//! [`Server::bond_records`](super::Server::bond_records) (serde-serializable, e.g. with
//! postcard into a flash page) whenever [`Server::bonds_generation`](super::Server::bonds_generation)
//! changes, and hands them back with [`Server::restore_bonds`](super::Server::restore_bonds) at
//! boot, next to the stack's own bond keys.

use super::cccd::Subscriptions;
use super::event::BondId;

/// One bonded peer's CCCDs. The bits are indexed by the table's CCCD order: a firmware whose
/// table changes should drop records written by an older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BondRecord {
    /// Whose CCCDs these are.
    pub bond: BondId,
    /// Their values.
    pub subscriptions: Subscriptions,
}

/// Fixed-capacity store, least recently updated first: when full, the stalest bond goes.
#[derive(Debug, Clone)]
pub(crate) struct Bonds<const N: usize> {
    records: heapless::Vec<BondRecord, N>,
    generation: u32,
}

impl<const N: usize> Bonds<N> {
    pub(crate) const fn new() -> Self {
        Self {
            records: heapless::Vec::new(),
            generation: 0,
        }
    }

    pub(crate) fn get(&self, bond: BondId) -> Option<Subscriptions> {
        self.records
            .iter()
            .find(|r| r.bond == bond)
            .map(|r| r.subscriptions)
    }

    /// Saves `subscriptions` under `bond`, as the most recent record.
    pub(crate) fn store(&mut self, bond: BondId, subscriptions: Subscriptions) {
        let record = BondRecord {
            bond,
            subscriptions,
        };
        if self.records.last() == Some(&record) {
            return;
        }
        self.records.retain(|r| r.bond != bond);
        if self.records.is_full() && !self.records.is_empty() {
            self.records.remove(0);
        }
        // Room was made above (a store of capacity 0 keeps nothing).
        let _ = self.records.push(record);
        self.generation = self.generation.wrapping_add(1);
    }

    pub(crate) fn forget(&mut self, bond: BondId) {
        let before = self.records.len();
        self.records.retain(|r| r.bond != bond);
        if self.records.len() != before {
            self.generation = self.generation.wrapping_add(1);
        }
    }

    pub(crate) fn records(&self) -> &[BondRecord] {
        &self.records
    }

    pub(crate) const fn generation(&self) -> u32 {
        self.generation
    }
}
