//! `buggify!()`: rare paths made common on purpose, as in FoundationDB.
//!
//! In a run with buggify on, each call site is enabled or not once for the whole run (a
//! function of the seed and the site, so the choice does not depend on which site is
//! reached first); an enabled site fires on each call with its probability. The enabled
//! sites are listed in the run's report.

use std::collections::BTreeMap;

use crate::hash::{hash_str, mix64};
use crate::rng::{Probability, SimRng};
use crate::world;

/// The chance that a site is enabled in a run.
const SITE_ENABLED: f64 = 0.25;
/// The default chance that an enabled site fires on a call.
pub const DEFAULT_FIRE: f64 = 0.25;

pub(crate) struct BuggifyState {
    enabled: bool,
    site_seed: u64,
    rng: SimRng,
    sites: BTreeMap<&'static str, bool>,
}

impl BuggifyState {
    pub(crate) fn new(root: &SimRng) -> Self {
        let rng = root.fork("sim-runtime.buggify");
        BuggifyState {
            enabled: false,
            site_seed: rng.seed(),
            rng,
            sites: BTreeMap::new(),
        }
    }

    pub(crate) fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    pub(crate) fn enabled_sites(&self) -> Vec<String> {
        self.sites
            .iter()
            .filter(|(_, on)| **on)
            .map(|(s, _)| s.to_string())
            .collect()
    }

    fn fire(&mut self, site: &'static str, p: Probability) -> bool {
        if !self.enabled {
            return false;
        }
        let seed = self.site_seed;
        let on = *self.sites.entry(site).or_insert_with(|| {
            let x = mix64(seed ^ hash_str(site));
            (x >> 11) as f64 / (1u64 << 53) as f64 <= SITE_ENABLED
        });
        on && self.rng.chance(p)
    }
}

/// Whether the buggify site `site` fires now. Use the [`buggify!`](crate::buggify!) macro,
/// which names the site by its source location. Outside a simulation: never.
pub fn fire(site: &'static str, probability: f64) -> bool {
    let p = Probability::new(probability).unwrap_or(Probability::NEVER);
    world::try_with(|w| w.buggify.fire(site, p)).unwrap_or(false)
}

/// True when this call site is enabled in the run and fires now (default chance 25 %).
/// `buggify!(0.05)` sets the firing chance.
#[macro_export]
macro_rules! buggify {
    () => {
        $crate::buggify::fire(
            concat!(file!(), ":", line!(), ":", column!()),
            $crate::buggify::DEFAULT_FIRE,
        )
    };
    ($p:expr) => {
        $crate::buggify::fire(concat!(file!(), ":", line!(), ":", column!()), $p)
    };
}
