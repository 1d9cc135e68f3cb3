//! Experiments on the hot path: the arm a request gets in each layer, and what each arm changes
//! for a campaign (`docs/experiments.md`).
//!
//! Assignment is `bidcore.experiments.assign` natively: the unit id from the layer's sources
//! (personal ones only when the request allows personal data, the request id last), its
//! namespace slot `fnv(unit + "__" + seed) % 1000`, the experiment owning that slot, its
//! filters, then the arm bucket compared with integer ranges Python computed from GrowthBook's
//! float bounds (so the two sides cannot round differently). Nothing here allocates per request.

use super::bitset::Bitset;
use super::plan::{ArmPlan, LayerPlan};
use crate::experiments::{v2_bucket, Fnv, HashVersion, Suffix};
use crate::features::fnv1a64;
use crate::openrtb::Request;

/// Where a unit id is read from, in a layer's order. The discriminant indexes [`Units`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    UserId = 0,
    BuyerUid = 1,
    DeviceIfa = 2,
    RequestId = 3,
}

impl Source {
    fn parse(name: &str) -> Option<Source> {
        Some(match name {
            "user.id" => Source::UserId,
            "user.buyeruid" => Source::BuyerUid,
            "device.ifa" => Source::DeviceIfa,
            "id" => Source::RequestId,
            _ => return None,
        })
    }

    fn personal(self) -> bool {
        !matches!(self, Source::RequestId)
    }

    /// The source's unit id in `request`, when present and not empty.
    pub fn read<'r>(self, request: &'r Request<'_>) -> Option<&'r str> {
        let text = match self {
            Source::UserId => request.user.as_deref().and_then(|u| u.id.as_ref()),
            Source::BuyerUid => request.user.as_deref().and_then(|u| u.buyeruid.as_ref()),
            Source::DeviceIfa => request.device.as_deref().and_then(|d| d.ifa.as_ref()),
            Source::RequestId => request.id.as_ref(),
        };
        text.map(|s| s.as_str()).filter(|s| !s.is_empty())
    }
}

/// What an arm sets for the campaigns of its experiment. Indices are the engine's: a model in
/// its model table, a shading table.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub models: [Option<u32>; 2],
    pub shading: Option<u16>,
    /// The value's multiplier in millionths.
    pub multiplier_ppm: Option<i64>,
    /// The experiment's campaigns this arm leaves out (`campaigns` lists the others).
    pub excluded: Option<Bitset>,
}

impl Arm {
    /// Whether the arm changes how its campaigns are valued, scored or shaded.
    pub fn acts(&self) -> bool {
        let o = &self.overrides;
        o.models.iter().any(Option::is_some) || o.shading.is_some() || o.multiplier_ppm.is_some()
    }
}

#[derive(Debug)]
pub struct Arm {
    /// `experiment:arm`, as the `{arm}` placeholder and the metrics name it.
    pub label: String,
    pub name: String,
    pub overrides: Overrides,
    /// Share of the campaigns' budgets: with a ledger, the campaigns' bids in this arm hold
    /// against an account of their own (`campaign@experiment:arm`).
    pub budget_share: Option<f64>,
}

#[derive(Debug)]
pub struct Experiment {
    pub key: String,
    /// Hash v1 hashes `unit + seed`: the seed as a suffix, continued in one step.
    seed: Suffix,
    /// Hash v2 hashes `seed + unit`: the state after the seed, computed once.
    seed_state: Fnv,
    /// Namespace `[lo, hi)` over the 1,000 v1 buckets.
    namespace: (u32, u32),
    /// Per arm, its `[lo, hi)` bucket range.
    ranges: Vec<(u32, u32)>,
    countries: Vec<String>,
    device_types: Vec<i32>,
    /// The campaigns the arms change (None: every campaign).
    scope: Option<Bitset>,
    pub arms: Vec<Arm>,
    /// The index of the experiment's first arm among all arms (counters are per arm).
    pub first_arm: usize,
}

impl Experiment {
    /// Whether the experiment's arms change only the campaigns it lists.
    pub fn scoped(&self) -> bool {
        self.scope.is_some()
    }

    /// Whether the experiment's arms change campaign `c`: it lists no campaigns, or lists it.
    pub fn applies(&self, c: usize) -> bool {
        self.scope.as_ref().is_none_or(|s| s.contains(c))
    }
}

#[derive(Debug)]
struct Layer {
    /// `"__" + seed`: the namespace hash is `fnv(unit + "__" + seed)`.
    namespace: Suffix,
    version: HashVersion,
    sources: Vec<Source>,
    experiments: Vec<Experiment>,
}

/// What assigning a layer reads in the common case (one experiment spanning the layer, no
/// filters, at most [`HOT_ARMS`] arms), in one cache line: a decision's other work (the parsed
/// request, the models' tables) pushes the layers out of the nearest caches between requests,
/// and reaching a layer's unit sources, experiment and arm ranges through their vectors cost a
/// miss per pointer.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Hot {
    /// The common case holds; otherwise the layer is assigned from [`Layer`].
    fast: bool,
    version: HashVersion,
    sources: [Source; HOT_SOURCES],
    source_count: u8,
    arm_count: u8,
    /// The arms' seed's FNV state (hash v2 continues it with the unit id).
    seed_state: Fnv,
    first_arm: u32,
    ranges: [(u32, u32); HOT_ARMS],
}

const HOT_ARMS: usize = 4;
/// `user.id`, `user.buyeruid`, `device.ifa`, `id`: a layer lists each at most once.
const HOT_SOURCES: usize = 4;

impl Hot {
    fn of(layer: &Layer) -> Hot {
        let mut hot = Hot {
            fast: false,
            version: layer.version,
            sources: [Source::RequestId; HOT_SOURCES],
            source_count: 0,
            arm_count: 0,
            seed_state: Fnv::default(),
            first_arm: 0,
            ranges: [(0, 0); HOT_ARMS],
        };
        let [only] = layer.experiments.as_slice() else { return hot };
        let fits = only.namespace == (0, 1000)
            && only.countries.is_empty()
            && only.device_types.is_empty()
            && only.ranges.len() <= HOT_ARMS
            && layer.sources.len() <= HOT_SOURCES;
        let (true, Ok(first_arm)) = (fits, u32::try_from(only.first_arm)) else { return hot };
        hot.sources[..layer.sources.len()].copy_from_slice(&layer.sources);
        hot.source_count = layer.sources.len() as u8;
        hot.ranges[..only.ranges.len()].copy_from_slice(&only.ranges);
        hot.arm_count = only.ranges.len() as u8;
        hot.seed_state = only.seed_state;
        hot.first_arm = first_arm;
        hot.fast = true;
        hot
    }
}

/// A request's arm in one layer: indices into [`Layers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    pub layer: u16,
    pub experiment: u16,
    pub arm: u16,
    /// The arm's index among all arms (its counters').
    pub index: u32,
    /// Where the unit id was read (the decision log reads it again for the unit's key).
    pub source: Source,
}

/// Every layer, ready to assign.
#[derive(Debug, Default)]
pub struct Layers {
    layers: Vec<Layer>,
    /// Per layer, what assigning it takes in the common case, packed (see [`Hot`]).
    hot: Vec<Hot>,
    /// Per arm (by its counter index), whether it changes how its campaigns are valued.
    acting: Vec<bool>,
    arms: usize,
    /// Whether some arm leaves campaigns out (the eligible set is then narrowed per request).
    excludes: bool,
}

impl Layers {
    /// Builds the layers; `campaign` finds a campaign's index by id, `arm_setup` turns an arm's
    /// plan into overrides (model and shading indices are the engine's).
    pub fn build(
        plans: &[LayerPlan],
        campaigns: usize,
        campaign: &dyn Fn(&str) -> Option<usize>,
        arm_setup: &mut dyn FnMut(&str, &ArmPlan) -> Result<Overrides, String>,
    ) -> Result<Layers, String> {
        let mut layers = Vec::with_capacity(plans.len());
        let mut arms = 0;
        let mut excludes = false;
        let set_of = |ids: &[String], what: &str| -> Result<Bitset, String> {
            let mut set = Bitset::empty(campaigns);
            for id in ids {
                set.insert(campaign(id).ok_or_else(|| format!("{what}: unknown campaign {id:?}"))?);
            }
            Ok(set)
        };
        for plan in plans {
            let version = HashVersion::parse(plan.hash_version)
                .ok_or_else(|| format!("layer {}: hash_version must be 1 or 2", plan.name))?;
            let sources = plan
                .unit
                .iter()
                .map(|s| Source::parse(s).ok_or_else(|| format!("layer {}: unknown unit source {s:?}", plan.name)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut experiments = Vec::with_capacity(plan.experiments.len());
            for e in &plan.experiments {
                let what = format!("experiment {}", e.key);
                let (lo, hi) = e.namespace;
                if lo >= hi || hi > 1000 || e.ranges.len() != e.arms.len() {
                    return Err(format!("{what}: namespace or ranges out of shape"));
                }
                if e.ranges.iter().any(|&(l, h)| l > h || h > version.buckets()) {
                    return Err(format!("{what}: a bucket range is out of bounds"));
                }
                let scope = if e.campaigns.is_empty() { None } else { Some(set_of(&e.campaigns, &what)?) };
                let mut built = Vec::with_capacity(e.arms.len());
                for a in &e.arms {
                    let mut overrides = arm_setup(&e.key, a)?;
                    if let Some(allowed) = &a.campaigns {
                        let allowed = set_of(allowed, &what)?;
                        let mut excluded = scope.clone().unwrap_or_else(|| Bitset::full(campaigns));
                        excluded.and_not(&allowed);
                        excludes |= !excluded.is_empty();
                        overrides.excluded = Some(excluded);
                    }
                    built.push(Arm {
                        label: format!("{}:{}", e.key, a.name),
                        name: a.name.clone(),
                        overrides,
                        budget_share: a.budget_share,
                    });
                }
                experiments.push(Experiment {
                    key: e.key.clone(),
                    seed_state: Fnv::default().text(&e.seed),
                    seed: Suffix::new(&e.seed),
                    namespace: e.namespace,
                    ranges: e.ranges.clone(),
                    countries: e.countries.iter().map(|c| c.to_ascii_uppercase()).collect(),
                    device_types: e.device_types.clone(),
                    scope,
                    first_arm: arms,
                    arms: built,
                });
                arms += e.arms.len();
            }
            layers.push(Layer { namespace: Suffix::new(&format!("__{}", plan.seed)), version, sources, experiments });
        }
        // `Assigned` keeps layer, experiment and arm as u16 and the arm's counter index as u32.
        let wide = |n: usize| n > usize::from(u16::MAX);
        if wide(layers.len())
            || layers.iter().any(|l| wide(l.experiments.len()) || l.experiments.iter().any(|e| wide(e.arms.len())))
            || u32::try_from(arms).is_err()
        {
            return Err("too many layers, experiments or arms".into());
        }
        let hot = layers.iter().map(Hot::of).collect();
        let acting = layers.iter().flat_map(|l| &l.experiments).flat_map(|e| &e.arms).map(Arm::acts).collect();
        Ok(Layers { layers, hot, acting, arms, excludes })
    }

    /// How many arms there are across experiments (counters are kept per arm).
    pub fn arm_count(&self) -> usize {
        self.arms
    }

    pub fn excludes(&self) -> bool {
        self.excludes
    }

    pub fn experiment(&self, a: &Assigned) -> &Experiment {
        &self.layers[usize::from(a.layer)].experiments[usize::from(a.experiment)]
    }

    /// Whether the request's arm `a` changes how its campaigns are valued, scored or shaded
    /// (`Arm::acts`, looked up by index).
    pub fn acts(&self, a: &Assigned) -> bool {
        self.acting[a.index as usize]
    }

    pub fn arm(&self, a: &Assigned) -> &Arm {
        &self.experiment(a).arms[usize::from(a.arm)]
    }

    /// Every arm in config order (the order of the per-arm counters) with its experiment.
    pub fn arms(&self) -> impl Iterator<Item = (&Experiment, &Arm)> {
        self.layers.iter().flat_map(|l| &l.experiments).flat_map(|e| e.arms.iter().map(move |a| (e, a)))
    }

    /// Whether the arm changes campaign `c`: its experiment lists no campaigns, or lists it.
    pub fn applies(&self, a: &Assigned, c: usize) -> bool {
        self.experiment(a).applies(c)
    }

    /// Appends to `out` the request's arm in every layer that places it in an experiment arm.
    ///
    /// FNV-1a is one long chain of dependent multiplications, so the work is arranged to feed
    /// each unit id once per hash and fixed texts not at all. A layer whose one experiment
    /// spans it whole needs no namespace hash, and its filters are checked before any hashing.
    /// The unit id's state is kept (and shared by the layers reading the same source) and
    /// continued by a fixed suffix, the namespace's or v1's seed, in one step ([`Suffix`]);
    /// hash v2 continues the seed's state, computed at build. The common layer (one experiment
    /// spanning it, no filters, at most [`HOT_ARMS`] arms) is read from its [`Hot`] line alone.
    pub fn assign(&self, request: &Request<'_>, out: &mut Vec<Assigned>) {
        out.clear();
        if self.layers.is_empty() {
            return;
        }
        let units = Units::of(request);
        let device = request.device.as_deref();
        let country = device.and_then(|d| d.geo.as_ref()).and_then(|g| g.country.as_ref()).map(|c| c.as_str());
        let devicetype = device.and_then(|d| d.devicetype);
        let admits = |e: &Experiment| {
            (e.countries.is_empty() || country.is_some_and(|c| e.countries.iter().any(|x| x.eq_ignore_ascii_case(c))))
                && (e.device_types.is_empty() || devicetype.is_some_and(|d| e.device_types.contains(&d)))
        };
        // The last unit id hashed and its state: layers reading one source share it.
        let mut last: Option<(Source, Fnv)> = None;
        let mut unit_state = |source: Source, unit: &str| match last {
            Some((s, state)) if s == source => state,
            _ => {
                let state = Fnv::default().text(unit);
                last = Some((source, state));
                state
            }
        };
        for (l, (hot, layer)) in self.hot.iter().zip(&self.layers).enumerate() {
            if hot.fast {
                let Some((source, unit)) = units.first(&hot.sources[..usize::from(hot.source_count)]) else {
                    continue;
                };
                // v1 hashes the seed after the unit id: its table is in the experiment.
                let seed = &layer.experiments[0].seed;
                let n = spanning_bucket(hot.version, || unit_state(source, unit), hot.seed_state, seed, unit);
                let Some(arm) = arm_in(&hot.ranges[..usize::from(hot.arm_count)], n) else { continue };
                let index = hot.first_arm + arm as u32;
                out.push(Assigned { layer: l as u16, experiment: 0, arm: arm as u16, index, source });
            } else if let Some((source, e, n)) = Self::bucket(layer, &units, &admits, &mut unit_state) {
                let experiment = &layer.experiments[e];
                let Some(arm) = arm_in(&experiment.ranges, n) else { continue };
                let index = (experiment.first_arm + arm) as u32;
                out.push(Assigned { layer: l as u16, experiment: e as u16, arm: arm as u16, index, source });
            }
        }
    }

    /// A layer's unit source, experiment and arm bucket in the general case (any namespace,
    /// filters, arms); `None` when no unit id is present, no experiment owns the unit's slot or
    /// the experiment's filters refuse the request. Kept out of line: the common layer's path
    /// through [`Layers::assign`] stays a few cache lines long.
    #[inline(never)]
    fn bucket(
        layer: &Layer,
        units: &Units<'_>,
        admits: &impl Fn(&Experiment) -> bool,
        unit_state: &mut impl FnMut(Source, &str) -> Fnv,
    ) -> Option<(Source, usize, u32)> {
        let (source, unit) = units.first(&layer.sources)?;
        let experiments = layer.experiments.as_slice();
        if let [only] = experiments {
            if only.namespace == (0, 1000) {
                if !admits(only) {
                    return None;
                }
                let n = spanning_bucket(layer.version, || unit_state(source, unit), only.seed_state, &only.seed, unit);
                return Some((source, 0, n));
            }
        }
        let state = unit_state(source, unit);
        let slot = layer.namespace.after(state).finish() % 1000;
        let e = experiments.iter().position(|e| e.namespace.0 <= slot && slot < e.namespace.1)?;
        let experiment = &experiments[e];
        if !admits(experiment) {
            return None;
        }
        let n = spanning_bucket(layer.version, || state, experiment.seed_state, &experiment.seed, unit);
        Some((source, e, n))
    }
}

/// A request's unit ids, read once for all layers: by [`Source`], present and not empty, the
/// personal ones only when the request allows personal data.
struct Units<'r> {
    ids: [Option<&'r str>; 4],
}

impl<'r> Units<'r> {
    fn of(request: &'r Request<'_>) -> Units<'r> {
        let personal = request.personal_data_allowed();
        let read = |s: Source| if personal || !s.personal() { s.read(request) } else { None };
        Units { ids: [read(Source::UserId), read(Source::BuyerUid), read(Source::DeviceIfa), read(Source::RequestId)] }
    }

    /// The unit id from the first of `sources` present, the request id last.
    #[inline]
    fn first(&self, sources: &[Source]) -> Option<(Source, &'r str)> {
        sources.iter().chain(std::iter::once(&Source::RequestId)).find_map(|&s| Some((s, self.ids[s as usize]?)))
    }
}

/// The arm bucket of `unit` in an experiment: v1 `fnv(unit + seed) % 1000` from the unit id's
/// state (`unit_state`, shared by layers reading the same source) and the seed as a suffix, v2
/// `fnv(str(fnv(seed + unit))) % 10000` from the seed's state.
#[inline]
fn spanning_bucket(
    version: HashVersion,
    unit_state: impl FnOnce() -> Fnv,
    seed_state: Fnv,
    seed: &Suffix,
    unit: &str,
) -> u32 {
    match version {
        HashVersion::V1 => seed.after(unit_state()).finish() % 1000,
        HashVersion::V2 => v2_bucket(seed_state.text(unit)),
    }
}

/// The arm whose `[lo, hi)` bucket range holds `n`, if one does.
#[inline]
fn arm_in(ranges: &[(u32, u32)], n: u32) -> Option<usize> {
    ranges.iter().position(|&(lo, hi)| lo <= n && n < hi)
}

/// The pseudonymous key of a request's unit in the decision log (`bidcore.experiments.unit_key`).
pub fn unit_key(request: &Request<'_>, a: &Assigned) -> String {
    format!("{:016x}", fnv1a64(a.source.read(request).unwrap_or("").as_bytes()))
}
