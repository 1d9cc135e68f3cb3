//! The bidding engine: request bytes in, the OpenRTB response (or a no-bid reason) out.
//!
//! [`Engine`] is built once from a [`Plan`] and the models by role, is immutable and shared by
//! threads; per request it needs a parse arena and a [`Scratch`] that the caller keeps per
//! thread, so a request allocates nothing once they have grown. The decision is
//! `docs/engine.md`, rule by rule; `bidcore.reference` is the same decision in plain Python.

mod arms;
mod bitset;
mod creative;
mod explain;
mod frequency;
mod ledger;
mod log;
mod observe;
mod pacing;
mod plan;
mod pricing;
mod reason;
mod respond;
mod targeting;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bumpalo::Bump;

pub use explain::{CandidateTrace, Explanation, ImpOutcome};
pub use log::{serialize, DecisionLog, DecisionRecord, Format, ImpRecord, LogStats, RECORD_VERSION};
pub use observe::{HistogramSnapshot, MonitorPlan, MonitorSnapshot, Observer, Snapshot, LATENCY_BOUNDS_NS};
pub use plan::{ArmPlan, ArmShadingPlan, CampaignPlan, CreativePlan, ExperimentPlan, GoalKind, LayerPlan, Plan};
pub use reason::Reason;

use self::arms::{Assigned, Layers, Overrides};
use self::bitset::Bitset;
use self::creative::{Creative, Media};
use self::frequency::Cap;
pub use self::frequency::{key as cap_key, user_hash, Cap as FrequencyCap, CapStats, Impression};
pub use self::ledger::{parse_token, Ledger, LedgerStats, NoticeKind, NoticeResult, Settled, SpendOn};
use self::ledger::{Account, Refused};
use self::pacing::Pacing;
use self::pricing::Curve;
use self::reason::Tally;
use self::targeting::{RequestFacts, TargetingIndex};
use crate::features::FeatureSpec;
use crate::model::Scorer;
use crate::money::{floor_micros, FxTable, Micros};
use crate::openrtb::request::{Deal, Imp};
use crate::openrtb::{Request, RequestError, RequestParser};

/// The models' roles; a campaign's goal says which it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ctr = 0,
    Cvr = 1,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Ctr, Role::Cvr];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ctr => "ctr",
            Role::Cvr => "cvr",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn needed_by(self, goal: GoalKind) -> bool {
        matches!((self, goal), (Role::Ctr, GoalKind::Cpc | GoalKind::Cpa) | (Role::Cvr, GoalKind::Cpa))
    }
}

/// A model for one role: its id (the decision log's), the scorer, its feature spec, and the
/// names of the campaign attributes the spec reads (in the order `FeatureSpec::campaign`
/// indexes them).
#[derive(Clone)]
pub struct RoleModel {
    pub id: String,
    pub scorer: Arc<dyn Scorer>,
    pub spec: Arc<FeatureSpec>,
    pub attributes: Vec<String>,
}

#[derive(Debug)]
struct Campaign {
    id: String,
    goal: GoalKind,
    amount: i64,
    max_bid: i64,
    min_bid: i64,
    deals: Vec<String>,
    deals_only: bool,
    creatives: Vec<Creative>,
    /// Per model of the engine's table, the campaign's attribute values in the model's spec
    /// order (NaN when unset).
    attributes: Vec<Vec<f64>>,
    /// Impressions per user per window; enforced by an engine with a ledger.
    cap: Option<Cap>,
}

/// A shading table: the bidder's (index 0) or an arm's.
#[derive(Debug, Clone)]
struct Shading {
    enabled: bool,
    default_curve: (i64, f64),
    segments: Vec<ShadingSegment>,
}

/// What decides a candidate's value and price beyond its campaign: the bidder's settings, or
/// those of the arms that apply to the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Settings {
    /// Per role, the model in the engine's table (NO_MODEL: the role has none).
    models: [u32; 2],
    shading: u16,
    multiplier_ppm: i64,
}

const NO_MODEL: u32 = u32::MAX;
const PPM: i64 = 1_000_000;

#[derive(Debug, Clone)]
struct ShadingSegment {
    countries: Vec<String>,
    device_types: Vec<i32>,
    media: Vec<Media>,
    center: i64,
    scale: f64,
}

/// What `bid` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response was written.
    Bid,
    NoBid(Reason),
}

/// Per-thread working memory: keep one per thread and pass it to every call.
#[derive(Debug, Default)]
pub struct Scratch {
    eligible: Bitset,
    sets: Bitset,
    facts: RequestFacts,
    candidates: Vec<Candidate>,
    /// Per role, the imp's feature rows: one block per model, candidates in order within it.
    rows: [Vec<f64>; 2],
    scores: Vec<f64>,
    /// The models of a role already scored for this imp.
    scored: Vec<u32>,
    /// The request's arm in each layer that places it.
    assigned: Vec<Assigned>,
    /// The settings of every campaign under the request's arms, and the arms that act on some
    /// campaigns only (`request_settings`).
    settings: Settings,
    scoped: Vec<Assigned>,
    /// The campaigns the pacer's throttle kept out of this request.
    paced: Bitset,
    /// `{arm}`'s value for the request (filled only when a template has `{arm}`).
    arms_text: String,
    /// The imp's win-rate curves, per shading table and media.
    curves: Vec<Option<Curve>>,
    winners: Vec<Candidate>,
    /// `rank`'s order: (surplus bound, candidate, curve to shade on).
    order: Vec<(f64, usize, Option<Curve>)>,
    /// `rank`'s shaded (lower, upper, curve): a candidate equal in all three is a twin.
    shaded: Vec<(i64, i64, Curve)>,
    /// Per imp, why it got no bid (None: it has a winner).
    imp_reasons: Vec<Option<Reason>>,
    /// The request's arm whose `budget_share` splits its campaigns' money (one layer at most
    /// sets it).
    budget_arm: Option<Assigned>,
    /// The hash of the request's user key (`frequency::user_hash`), when it has one usable for
    /// frequency caps.
    user: Option<u64>,
    /// The imp's center of the bidder's shading curve from the win-rate model (micros of the
    /// bidder's currency), when it has one and a candidate shades on it.
    market: Option<i64>,
    market_row: Vec<f64>,
    /// Whether the winners' feature rows are kept (for the decision log) in `kept_rows`.
    keep_rows: bool,
    kept_rows: Vec<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    imp: usize,
    campaign: usize,
    creative: usize,
    /// Index of the deal in the imp's `pmp.deals`.
    deal: Option<usize>,
    floor: i64,
    settings: Settings,
    predictions: [f64; 2],
    /// Per role, where the candidate's row starts in `Scratch::rows` (NO_ROW: not scored by
    /// that role); for a winner whose rows were kept, in `Scratch::kept_rows`.
    rows: [u32; 2],
    value: i64,
    lower: i64,
    upper: i64,
    price: i64,
    surplus: f64,
    /// A winner of a limited campaign: its price in nanos of the bidder's currency, held
    /// against the campaign's account while the bid is in flight (0: nothing held).
    cost: i64,
    /// The winner's `{bid}` token (0: not registered).
    token: u64,
}

pub struct Engine {
    parser: RequestParser,
    seat: String,
    currency: String,
    fx: FxTable,
    /// The bidder's shading table, then the arms'.
    shadings: Vec<Shading>,
    campaigns: Vec<Campaign>,
    index: TargetingIndex,
    /// Every campaign: where a request's eligible set starts.
    all: Bitset,
    /// The bidder's models, then the arms'.
    models: Vec<RoleModel>,
    /// The win-rate model: per imp, the center of the bidder's shading curve (`with_win_rate`).
    win_rate: Option<RoleModel>,
    /// Per role, the bidder's model in `models`.
    base: [Option<u32>; 2],
    layers: Layers,
    /// Per account (`accounts`' order: the campaigns', then their shares under arms with a
    /// budget share), the pacer's throttle and multiplier (set while the engine serves).
    pacing: Pacing,
    /// Whether a template has `{arm}`.
    uses_arm: bool,
    observer: Observer,
    log: Option<Arc<DecisionLog>>,
    tmax_margin: Duration,
    /// With a ledger: each bid is registered (its `{bid}` token) and holds its cost against
    /// its account (`accounts`, one per id of `account_ids`) when that account is limited.
    ledger: Option<Arc<Ledger>>,
    accounts: Vec<Arc<Account>>,
    /// The accounts' ids: each campaign's, in config order, then `campaign@experiment:arm` for
    /// each campaign's share under an arm with a `budget_share` that applies to it. A request
    /// in such an arm spends (and is paced) on the share.
    account_ids: Vec<String>,
    /// (arm index, campaign) to the index in `account_ids` of the campaign's share under an
    /// arm with a `budget_share`.
    shares: HashMap<(u32, usize), usize>,
    /// Whether some campaign has a frequency cap (else no request's user key is read).
    capped: bool,
}

const NO_ROW: u32 = u32::MAX;

/// Where `rank` splits a candidate's price span to bound its surplus, in grid steps.
const SPLIT_STEP: i64 = 12;

impl Engine {
    /// Builds the engine; checks what the decision relies on (positive caps, known media,
    /// templates, a model for every goal that needs one, model widths equal to their specs).
    /// `arm_models`: the models the experiment arms name, by the key their plan gives;
    /// `monitors`: per role, the model's id and the histograms its metrics keep (a role with a
    /// model and no monitor plan is scored but not watched; arms' models are not watched);
    /// `log`: where decisions are recorded.
    pub fn new(
        plan: Plan,
        models: [Option<RoleModel>; 2],
        arm_models: Vec<(String, RoleModel)>,
        parser: RequestParser,
        monitors: [Option<MonitorPlan>; 2],
        log: Option<Arc<DecisionLog>>,
    ) -> Result<Engine, String> {
        let fx = FxTable::new(plan.fx.clone())?;
        if !plan.fx.is_empty() && fx.rate(&plan.currency).is_none() {
            return Err(format!("fx has no rate for the bidder's currency {}", plan.currency));
        }
        let check = |what: &str, m: &RoleModel| {
            if m.scorer.num_features() != m.spec.len() || m.scorer.num_outputs() != 1 {
                return Err(format!(
                    "the {what} model takes {} features and gives {} outputs; its spec has {} features (one output needed)",
                    m.scorer.num_features(),
                    m.scorer.num_outputs(),
                    m.spec.len()
                ));
            }
            Ok(())
        };
        let mut table: Vec<RoleModel> = Vec::new();
        let mut base = [None, None];
        for (role, model) in Role::ALL.iter().zip(models) {
            if let Some(m) = model {
                check(role.as_str(), &m)?;
                base[*role as usize] = Some(table.len() as u32);
                table.push(m);
            }
        }
        let mut keyed = std::collections::HashMap::new();
        for (key, m) in arm_models {
            check(&key, &m)?;
            keyed.insert(key, table.len() as u32);
            table.push(m);
        }
        let defaults = [&plan.nurl, &plan.burl, &plan.lurl];
        let mut campaigns = Vec::with_capacity(plan.campaigns.len());
        for c in &plan.campaigns {
            if c.id.contains('@') {
                // It separates an arm's share in an account id (`campaign@experiment:arm`).
                return Err(format!("campaign {}: an id must not contain '@'", c.id));
            }
            if c.max_bid <= 0 || c.min_bid < 0 || c.min_bid > c.max_bid || c.amount < 0 {
                return Err(format!("campaign {}: amounts out of range", c.id));
            }
            for role in Role::ALL {
                if role.needed_by(c.goal) && base[role as usize].is_none() {
                    return Err(format!("campaign {} needs a {} model", c.id, role.as_str()));
                }
            }
            let creatives =
                c.creatives.iter().map(|p| Creative::build(p, defaults)).collect::<Result<Vec<_>, String>>()?;
            let attributes = table
                .iter()
                .map(|m| {
                    m.attributes
                        .iter()
                        .map(|name| c.features.iter().find(|(n, _)| n == name).map_or(f64::NAN, |&(_, v)| v))
                        .collect()
                })
                .collect();
            campaigns.push(Campaign {
                id: c.id.clone(),
                goal: c.goal,
                amount: c.amount,
                max_bid: c.max_bid,
                min_bid: c.min_bid,
                deals: c.deals.clone(),
                deals_only: c.deals_only,
                creatives,
                attributes,
                cap: c.frequency_cap.as_ref().map(|f| Cap { count: f.count, window: f.window_seconds }),
            });
        }
        let curve_ok = |center: i64, scale: f64| center > 0 && scale > 0.0 && scale.is_finite();
        if !curve_ok(plan.shading.center, plan.shading.scale) {
            return Err("shading: center and scale must be positive".into());
        }
        let mut segments = Vec::new();
        for s in &plan.shading.segments {
            if !curve_ok(s.center, s.scale) {
                return Err("shading segment: center and scale must be positive".into());
            }
            let media = s
                .media
                .iter()
                .map(|m| Media::parse(m).ok_or_else(|| format!("unknown media {m:?}")))
                .collect::<Result<_, _>>()?;
            segments.push(ShadingSegment {
                countries: s.countries.iter().map(|c| c.to_ascii_uppercase()).collect(),
                device_types: s.device_types.clone(),
                media,
                center: s.center,
                scale: s.scale,
            });
        }
        let bidder_shading = Shading {
            enabled: plan.shading.enabled,
            default_curve: (plan.shading.center, plan.shading.scale),
            segments,
        };
        let mut shadings = vec![bidder_shading.clone()];
        let ids: std::collections::HashMap<&str, usize> =
            plan.campaigns.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
        let layers =
            Layers::build(&plan.experiments, plan.campaigns.len(), &|id| ids.get(id).copied(), &mut |key, arm| {
                let what = format!("experiment {key}, arm {}", arm.name);
                let mut overrides = Overrides::default();
                for (role, model) in &arm.models {
                    let r = Role::parse(role).ok_or_else(|| format!("{what}: unknown model role {role:?}"))?;
                    if base[r as usize].is_none() {
                        return Err(format!("{what}: replaces the {role} model, which the bidder has none of"));
                    }
                    let index = keyed.get(model).ok_or_else(|| format!("{what}: no model {model:?} was given"))?;
                    overrides.models[r as usize] = Some(*index);
                }
                if let Some(p) = &arm.shading {
                    let own_curve = p.center.is_some() || p.scale.is_some();
                    let curve = (
                        p.center.unwrap_or(bidder_shading.default_curve.0),
                        p.scale.unwrap_or(bidder_shading.default_curve.1),
                    );
                    if !curve_ok(curve.0, curve.1) {
                        return Err(format!("{what}: shading center and scale must be positive"));
                    }
                    shadings.push(Shading {
                        enabled: p.enabled.unwrap_or(bidder_shading.enabled),
                        default_curve: curve,
                        // An arm's own curve applies to every request: the segments are the bidder's.
                        segments: if own_curve { Vec::new() } else { bidder_shading.segments.clone() },
                    });
                    overrides.shading = Some(u16::try_from(shadings.len() - 1).map_err(|_| "too many shading arms")?);
                }
                if let Some(ppm) = arm.multiplier_ppm {
                    if !(1..=100 * PPM).contains(&ppm) {
                        return Err(format!("{what}: the bid multiplier must be in (0, 100]"));
                    }
                    overrides.multiplier_ppm = Some(ppm);
                }
                if arm.budget_share.is_some_and(|s| !(s > 0.0 && s <= 1.0)) {
                    return Err(format!("{what}: budget_share must be in (0, 1]"));
                }
                Ok(overrides)
            })?;
        for (role, (model, monitor)) in Role::ALL.iter().zip(base.iter().zip(&monitors)) {
            let width = model.map(|m| table[m as usize].spec.len());
            match (width, monitor) {
                (None, Some(_)) => return Err(format!("a monitor for the {} model, which is absent", role.as_str())),
                (Some(w), Some(m)) if m.features.iter().any(|(_, column, _)| *column >= w) => {
                    return Err(format!("the {} model's monitored features name a column past {w}", role.as_str()))
                }
                _ => {}
            }
        }
        let observer = Observer::new(plan.campaigns.len(), layers.arm_count(), monitors)?;
        let uses_arm = campaigns.iter().flat_map(|c| &c.creatives).any(Creative::uses_arm);
        let mut account_ids: Vec<String> = campaigns.iter().map(|c| c.id.clone()).collect();
        let mut shares = HashMap::new();
        for (index, (experiment, arm)) in layers.arms().enumerate() {
            if arm.budget_share.is_none() {
                continue;
            }
            for (c, campaign) in campaigns.iter().enumerate().filter(|(c, _)| experiment.applies(*c)) {
                shares.insert((index as u32, c), account_ids.len());
                account_ids.push(format!("{}@{}", campaign.id, arm.label));
            }
        }
        // A share's draw is its campaign's: only the throttle it is compared with differs.
        let account_campaigns = account_ids.iter().map(|id| id.split('@').next().unwrap_or(id));
        let pacing = Pacing::new(campaigns.len(), account_campaigns);
        Ok(Engine {
            win_rate: None,
            parser,
            index: TargetingIndex::build(&plan.campaigns),
            all: Bitset::full(plan.campaigns.len()),
            seat: plan.seat,
            currency: plan.currency.to_ascii_uppercase(),
            fx,
            shadings,
            campaigns,
            models: table,
            base,
            uses_arm,
            pacing,
            layers,
            observer,
            log,
            tmax_margin: Duration::from_millis(plan.tmax_margin_ms),
            ledger: None,
            accounts: Vec::new(),
            account_ids,
            shares,
            capped: plan.campaigns.iter().any(|c| c.frequency_cap.is_some()),
        })
    }

    /// Takes each imp's center of the bidder's shading curve (table 0; an arm's own curve keeps
    /// its center) from `model`, a regression on the natural log of the CPM that wins half the
    /// time, in the bidder's currency (`docs/engine.md`, step 6). The market price is the
    /// imp's, whichever campaign bids: the model's features may not read campaign attributes.
    pub fn with_win_rate(mut self, model: RoleModel) -> Result<Engine, String> {
        if model.scorer.num_features() != model.spec.len() || model.scorer.num_outputs() != 1 {
            return Err(format!(
                "the win_rate model takes {} features and gives {} outputs; its spec has {} features (one output needed)",
                model.scorer.num_features(),
                model.scorer.num_outputs(),
                model.spec.len()
            ));
        }
        if !model.attributes.is_empty() {
            return Err(format!(
                "the win_rate model reads campaign attributes ({}): the price that wins an imp is the imp's, whoever bids",
                model.attributes.join(", ")
            ));
        }
        self.win_rate = Some(model);
        Ok(self)
    }

    /// The engine, registering its bids in `ledger` and holding their cost against the
    /// accounts of limited campaigns (`docs/budget.md`). Engines built on one ledger share
    /// its accounts and bids in flight, so a reload keeps them.
    pub fn with_ledger(mut self, ledger: Arc<Ledger>) -> Engine {
        self.accounts = self.account_ids.iter().map(|id| ledger.account(id)).collect();
        self.ledger = Some(ledger);
        self
    }

    /// The counts behind the metrics, summed over threads.
    pub fn snapshot(&self) -> Snapshot {
        self.observer.snapshot()
    }

    pub fn log(&self) -> Option<&Arc<DecisionLog>> {
        self.log.as_ref()
    }

    /// Every experiment arm in config order (the order of `Snapshot::arms`): experiment key,
    /// arm name, budget share.
    pub fn arms(&self) -> impl Iterator<Item = (&str, &str, Option<f64>)> {
        self.layers.arms().map(|(e, a)| (e.key.as_str(), a.name.as_str(), a.budget_share))
    }

    /// Sets account `account`'s pacing (a campaign's, or its share under an arm with a budget
    /// share, `campaign@experiment:arm`): the share of requests it enters and its value's
    /// multiplier, both in millionths (`docs/engine.md`, Pacing). Takes effect on the next
    /// request of every thread; `Err` for an unknown account or values out of range.
    pub fn set_pacing(&self, account: &str, throttle_ppm: u32, multiplier_ppm: u32) -> Result<(), String> {
        let index = self.account_ids.iter().position(|id| id == account).ok_or_else(|| {
            let what = if account.contains('@') { "arm share" } else { "campaign" };
            format!("no {what} {account:?}")
        })?;
        self.pacing.set(index, throttle_ppm, multiplier_ppm)
    }

    /// Every account's pacing, campaigns first in config order, then the arms' shares: (id,
    /// throttle ppm, multiplier ppm).
    pub fn pacing(&self) -> impl Iterator<Item = (&str, u32, u32)> {
        self.account_ids.iter().enumerate().map(|(i, id)| {
            let (throttle, multiplier) = self.pacing.get(i);
            (id.as_str(), throttle, multiplier)
        })
    }

    pub fn campaign_ids(&self) -> impl Iterator<Item = &str> {
        self.campaigns.iter().map(|c| c.id.as_str())
    }

    /// Decides on `body` at time `now` (seconds since the epoch) and, on a bid, appends the
    /// response JSON to `out`. An invalid body is an error (counted as `invalid`).
    ///
    /// `waited`: how long the request waited before this call (the server's queue). With it, a
    /// request's `tmax`, less the configured network margin, is a deadline: once past it the
    /// answer is a no-bid (`late`) rather than a response the exchange would discard.
    pub fn bid(
        &self,
        body: &[u8],
        now: f64,
        waited: Option<Duration>,
        arena: &Bump,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, RequestError> {
        let started = Instant::now();
        self.observer.request();
        let request = match self.parser.parse(body, arena) {
            Ok(request) => request,
            Err(err) => {
                self.observer.no_bid(Reason::Invalid);
                self.finish(started, invalid_record(now, &err));
                return Err(err);
            }
        };
        let deadline = match (request.tmax, waited) {
            (Some(tmax), Some(waited)) => {
                Some(started + Duration::from_millis(u64::from(tmax)).saturating_sub(self.tmax_margin + waited))
            }
            _ => None,
        };
        let late = || deadline.is_some_and(|d| Instant::now() >= d);
        scratch.keep_rows = self.log.is_some();
        self.layers.assign(&request, &mut scratch.assigned);
        let decided = if late() {
            self.request_no_bid(&request, Reason::Late, None)
        } else {
            self.decide(&request, now, scratch, None)
        };
        let mut bid_currency = None;
        let mut arm_bid = None;
        let outcome = match decided {
            Decided::Bid { .. } if late() => Outcome::NoBid(Reason::Late),
            Decided::Bid { .. } if !self.open_bids(now, scratch) => {
                // Every winner refused by the ledger (another thread took the money or the slot):
                // the first imp's reason, as for any no-bid.
                Outcome::NoBid(scratch.imp_reasons.first().copied().flatten().unwrap_or(Reason::Budget))
            }
            Decided::Bid { currency } => {
                bid_currency = Some(currency);
                self.arms_text(&scratch.assigned, &mut scratch.arms_text);
                self.write_response(&request, currency, &scratch.winners, &scratch.arms_text, out);
                let imps = scratch.winners.len() as u64;
                self.observer.bid(imps);
                let mut value = 0;
                for w in &scratch.winners {
                    let micros = self.fx.convert_down(Micros(w.price), currency, &self.currency).map_or(0, |m| m.0);
                    self.observer.campaign_bid(w.campaign, micros.max(0) as u64);
                    value += micros.max(0) as u64;
                }
                arm_bid = Some((imps, value));
                Outcome::Bid
            }
            Decided::NoBid(reason) => Outcome::NoBid(reason),
        };
        if let Outcome::NoBid(reason) = outcome {
            self.observer.no_bid(reason);
        }
        if !scratch.assigned.is_empty() {
            self.observer.arm_outcome(scratch.assigned.iter().map(|a| a.index as usize), arm_bid);
        }
        self.finish(started, |latency_ns| {
            // A bid's currency is known; a no-bid's is looked up only when there is a log.
            let currency = bid_currency.or_else(|| self.bid_currency(&request));
            self.record(&request, now, outcome, currency, scratch, latency_ns)
        });
        Ok(outcome)
    }

    /// Counts the decision's latency and, with a log, records it.
    #[inline]
    fn finish(&self, started: Instant, record: impl FnOnce(u64) -> DecisionRecord) {
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.observer.latency(ns);
        if let Some(log) = &self.log {
            log.push(record(ns));
        }
    }

    /// The decision log's record of a decision `bid` just made (`scratch` still holds it).
    fn record(
        &self,
        request: &Request<'_>,
        now: f64,
        outcome: Outcome,
        currency: Option<&str>,
        scratch: &Scratch,
        latency_ns: u64,
    ) -> DecisionRecord {
        let request_reason = match outcome {
            Outcome::Bid => None,
            Outcome::NoBid(reason) => Some(reason),
        };
        let imps = request.imp.as_deref().unwrap_or(&[]);
        let mut records = Vec::with_capacity(imps.len());
        for (i, imp) in imps.iter().enumerate() {
            let won = if outcome == Outcome::Bid { scratch.winners.iter().find(|w| w.imp == i) } else { None };
            let reason = match won {
                Some(_) => None,
                None if outcome == Outcome::Bid => scratch.imp_reasons.get(i).copied().flatten(),
                None => match request_reason {
                    // Past the deadline the imps' own reasons are not the answer.
                    Some(Reason::Late) => Some(Reason::Late),
                    r => scratch.imp_reasons.get(i).copied().flatten().or(r),
                },
            };
            records.push(self.imp_record(imp, won, reason, scratch));
        }
        DecisionRecord {
            v: RECORD_VERSION,
            ts: now,
            request: request.id.as_ref().map(|s| s.to_string()),
            bid: outcome == Outcome::Bid,
            reason: request_reason.map(Reason::as_str),
            nbr: request_reason.map(Reason::nbr),
            error: None,
            currency: currency.map(str::to_owned),
            test: request.test == Some(1),
            latency_ns,
            arms: log::ByExperiment(
                scratch
                    .assigned
                    .iter()
                    .map(|a| (self.layers.experiment(a).key.clone(), self.layers.arm(a).name.clone()))
                    .collect(),
            ),
            units: log::ByExperiment(
                scratch
                    .assigned
                    .iter()
                    .map(|a| (self.layers.experiment(a).key.clone(), arms::unit_key(request, a)))
                    .collect(),
            ),
            models: log::Pairs(
                Role::ALL
                    .iter()
                    .filter_map(|&r| {
                        let chosen = scratch
                            .assigned
                            .iter()
                            .find_map(|a| self.layers.arm(a).overrides.models[r as usize])
                            .or(self.base[r as usize])?;
                        Some((r.as_str(), self.models[chosen as usize].id.clone()))
                    })
                    .chain(self.win_rate.as_ref().map(|m| ("win_rate", m.id.clone())))
                    .collect(),
            ),
            imps: records,
        }
    }

    fn imp_record(
        &self,
        imp: &Imp<'_>,
        won: Option<&Candidate>,
        reason: Option<Reason>,
        scratch: &Scratch,
    ) -> ImpRecord {
        let mut record = ImpRecord {
            imp: imp.id.as_ref().map_or_else(String::new, |s| s.to_string()),
            campaign: None,
            creative: None,
            deal: None,
            price_micros: None,
            value_micros: None,
            floor_micros: None,
            reason: reason.map(Reason::as_str),
            scores: log::Pairs(Vec::new()),
            features: log::Pairs(Vec::new()),
        };
        let Some(w) = won else { return record };
        let campaign = &self.campaigns[w.campaign];
        let deals: &[Deal<'_>] = imp.pmp.as_deref().and_then(|p| p.deals.as_deref()).unwrap_or(&[]);
        record.campaign = Some(campaign.id.clone());
        record.creative = Some(campaign.creatives[w.creative].id.clone());
        record.deal = w.deal.and_then(|d| deals.get(d)).and_then(|d| d.id.as_ref()).map(|s| s.to_string());
        record.price_micros = Some(w.price);
        record.value_micros = Some(w.value);
        record.floor_micros = Some(w.floor);
        for role in Role::ALL {
            let Some(model) = self.models.get(w.settings.models[role as usize] as usize) else { continue };
            if !role.needed_by(campaign.goal) {
                continue;
            }
            record.scores.0.push((role.as_str(), w.predictions[role as usize]));
            let offset = w.rows[role as usize];
            if offset != NO_ROW {
                let start = offset as usize;
                let row = &scratch.kept_rows[start..start + model.spec.len()];
                record.features.0.push((role.as_str(), row.iter().map(|&x| (!x.is_nan()).then_some(x)).collect()));
            }
        }
        record
    }

    /// The whole decision with its reasons and arithmetic, for "why no bid". Counts nothing.
    pub fn explain(&self, body: &[u8], now: f64, arena: &Bump) -> Result<(Explanation, Option<Vec<u8>>), RequestError> {
        let request = self.parser.parse(body, arena)?;
        let mut scratch = Scratch::default();
        let mut trace = Explanation::default();
        self.layers.assign(&request, &mut scratch.assigned);
        for a in &scratch.assigned {
            trace.arms.push((self.layers.experiment(a).key.clone(), self.layers.arm(a).name.clone()));
        }
        let decided = self.decide(&request, now, &mut scratch, Some(&mut trace));
        let response = match decided {
            Decided::Bid { currency } => {
                let mut out = Vec::new();
                self.arms_text(&scratch.assigned, &mut scratch.arms_text);
                self.write_response(&request, currency, &scratch.winners, &scratch.arms_text, &mut out);
                Some(out)
            }
            Decided::NoBid(reason) => {
                trace.reason = Some(reason);
                None
            }
        };
        Ok((trace, response))
    }

    fn decide<'s>(
        &'s self,
        request: &Request<'_>,
        now: f64,
        scratch: &mut Scratch,
        mut trace: Option<&mut Explanation>,
    ) -> Decided<'s> {
        scratch.winners.clear();
        scratch.imp_reasons.clear();
        scratch.kept_rows.clear();
        scratch.budget_arm = if self.shares.is_empty() {
            None
        } else {
            scratch.assigned.iter().find(|a| self.layers.arm(a).budget_share.is_some()).copied()
        };
        if let Some(t) = trace.as_deref_mut() {
            t.personal = request.personal_data_allowed();
        }
        let seat = self.seat.as_str();
        // An empty list restricts nothing.
        let lists = |l: &Option<&mut [crate::openrtb::Str<'_>]>| {
            l.as_deref().filter(|l| !l.is_empty()).map(|l| l.iter().any(|s| s.as_str() == seat))
        };
        if lists(&request.wseat) == Some(false) || lists(&request.bseat) == Some(true) {
            return self.request_no_bid(request, Reason::BlockedSeat, trace);
        }
        let Some(currency) = self.bid_currency(request) else {
            return self.request_no_bid(request, Reason::Currency, trace);
        };
        if let Some(t) = trace.as_deref_mut() {
            t.currency = Some(currency.to_owned());
        }
        scratch.eligible.copy_from(&self.all);
        scratch.sets.copy_from(&self.all);
        scratch.facts.fill(request);
        scratch.user = self.user_key(request, scratch.facts.personal);
        self.index.eligible(request, &scratch.facts, now, &mut scratch.eligible, &mut scratch.sets);
        if self.layers.excludes() {
            for a in &scratch.assigned {
                if let Some(excluded) = &self.layers.arm(a).overrides.excluded {
                    scratch.eligible.and_not(excluded);
                }
            }
        }
        let targeted = !scratch.eligible.is_empty();
        let budget_arm = scratch.budget_arm;
        let paced = targeted
            && self
                .pacing
                .throttle(request, &mut scratch.eligible, &mut scratch.paced, |c| self.account_of(c, budget_arm));
        if let Some(t) = trace.as_deref_mut() {
            for (i, c) in self.campaigns.iter().enumerate() {
                let failure = if scratch.eligible.contains(i) {
                    None
                } else if let Some(rule) = self.index.first_failure(i, request, &scratch.facts, now) {
                    Some(rule)
                } else if paced && scratch.paced.contains(i) {
                    Some(Reason::Budget)
                } else {
                    // Targeted, but left out by the request's arm: the arm runs no such campaign.
                    Some(Reason::NoCampaign)
                };
                t.targeting.push((c.id.clone(), failure));
            }
        }
        if scratch.eligible.is_empty() {
            // Every targeted campaign throttled by its pacer: the budget is why.
            let reason = if targeted { Reason::Budget } else { Reason::NoCampaign };
            return self.request_no_bid(request, reason, trace);
        }
        self.request_settings(scratch);
        let imps = request.imp.as_deref().unwrap_or(&[]);
        let mut first_reason = None;
        for (i, imp) in imps.iter().enumerate() {
            let reason = self.decide_imp(request, i, imp, currency, now, scratch, trace.as_deref_mut());
            scratch.imp_reasons.push(reason);
            if let Some(t) = trace.as_deref_mut() {
                let won = scratch.winners.last().filter(|w| w.imp == i);
                t.imps.push(self.imp_outcome(imp, won, reason));
            }
            if i == 0 {
                first_reason = reason;
            }
        }
        if scratch.winners.is_empty() {
            return Decided::NoBid(first_reason.unwrap_or(Reason::NoCampaign));
        }
        Decided::Bid { currency }
    }

    /// A no-bid for the whole request: in `explain`, every imp carries its reason.
    fn request_no_bid<'s>(
        &self,
        request: &Request<'_>,
        reason: Reason,
        trace: Option<&mut Explanation>,
    ) -> Decided<'s> {
        if let Some(t) = trace {
            for imp in request.imp.as_deref().unwrap_or(&[]) {
                t.imps.push(self.imp_outcome(imp, None, Some(reason)));
            }
        }
        Decided::NoBid(reason)
    }

    /// The currency to bid in: the bidder's when the request allows it or does not say, else
    /// the first the request allows that the FX table can convert to.
    fn bid_currency<'s>(&'s self, request: &Request<'_>) -> Option<&'s str> {
        let allowed = request.cur.as_deref().unwrap_or(&[]);
        if allowed.is_empty() || allowed.iter().any(|c| c.as_str() == self.currency) {
            return Some(&self.currency);
        }
        self.fx.rate(&self.currency)?;
        // The FX table's own copy of the code, so the bid currency outlives the request.
        allowed.iter().find_map(|c| self.fx.code(c))
    }

    /// Candidates for one imp, scored and priced; the best goes to `scratch.winners`. Returns the
    /// imp's no-bid reason when it has no bid.
    #[allow(clippy::too_many_arguments)]
    fn decide_imp(
        &self,
        request: &Request<'_>,
        imp_index: usize,
        imp: &Imp<'_>,
        currency: &str,
        now: f64,
        scratch: &mut Scratch,
        mut trace: Option<&mut Explanation>,
    ) -> Option<Reason> {
        let mut tally = Tally::default();
        scratch.candidates.clear();
        let deals: &[Deal<'_>] = imp.pmp.as_deref().and_then(|p| p.deals.as_deref()).unwrap_or(&[]);
        let private = imp.pmp.as_deref().and_then(|p| p.private_auction) == Some(1);
        for c in scratch.eligible.iter() {
            let campaign = &self.campaigns[c];
            let step = self.candidate(request, imp_index, imp, deals, private, c, currency);
            match step {
                Ok(mut candidate) => {
                    candidate.settings = self.settings(c, scratch);
                    scratch.candidates.push(candidate);
                }
                Err((reason, creative, deal)) => {
                    tally.add(reason);
                    if let Some(t) = trace.as_deref_mut() {
                        t.candidates.push(CandidateTrace::excluded(
                            imp,
                            &campaign.id,
                            reason,
                            creative.map(|k| campaign.creatives[k].id.clone()),
                            deal.and_then(|d| deals[d].id.map(|s| s.to_string())),
                        ));
                    }
                }
            }
        }
        self.score(request, imp_index, now, scratch);
        scratch.market = self.market(request, imp_index, deals, now, scratch);
        let candidates = scratch.candidates.len();
        let best = match trace {
            Some(t) => self.rank_all(request, imp, deals, currency, now, scratch, &mut tally, t),
            None => loop {
                // The best candidate whose campaign's money covers its price: one that cannot
                // is out (budget), and the rest are ranked again. The first ranking counted
                // every other candidate's reason already: a second must not count them again.
                let mut again = Tally::default();
                let counting = if scratch.candidates.len() == candidates { &mut tally } else { &mut again };
                let Some(mut best) = self.rank(request, deals, currency, scratch, counting) else {
                    break None;
                };
                match self.covered(&mut best, currency, now, scratch) {
                    Ok(()) => break Some(best),
                    Err(reason) => tally.add(reason),
                }
                scratch.candidates.retain(|c| c.campaign != best.campaign);
            },
        };
        match best {
            Some(mut winner) => {
                if scratch.keep_rows {
                    self.keep_rows(&mut winner, scratch);
                }
                scratch.winners.push(winner);
                None
            }
            None => Some(tally.most_common().unwrap_or(Reason::NoCampaign)),
        }
    }

    /// Deal, creative and floor of campaign `c` on this imp, or why not (with the creative and
    /// deal it got to).
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn candidate(
        &self,
        request: &Request<'_>,
        imp_index: usize,
        imp: &Imp<'_>,
        deals: &[Deal<'_>],
        private: bool,
        c: usize,
        currency: &str,
    ) -> Result<Candidate, (Reason, Option<usize>, Option<usize>)> {
        let campaign = &self.campaigns[c];
        let seat_ok =
            |d: &Deal<'_>| d.wseat.as_deref().is_none_or(|w| w.is_empty() || w.iter().any(|s| s.as_str() == self.seat));
        let deal = if campaign.deals.is_empty() {
            None
        } else {
            deals.iter().position(|d| {
                seat_ok(d) && d.id.as_ref().is_some_and(|id| campaign.deals.iter().any(|own| own == id.as_str()))
            })
        };
        if deal.is_none() {
            if private {
                return Err((Reason::PrivateAuction, None, None));
            }
            if campaign.deals_only {
                return Err((Reason::Deal, None, None));
            }
        }
        let mut last = Reason::NoCreative;
        let mut chosen = None;
        for (k, creative) in campaign.creatives.iter().enumerate() {
            match creative.fit(request, imp) {
                Ok(()) => {
                    chosen = Some(k);
                    break;
                }
                Err(reason) => last = reason,
            }
        }
        let Some(creative) = chosen else { return Err((last, None, deal)) };
        let (floor, floor_currency) = match deal {
            Some(d) => (deals[d].bidfloor, deals[d].bidfloorcur),
            None => (imp.bidfloor, imp.bidfloorcur),
        };
        let floor_currency = floor_currency.map_or("USD", |c| c.as_str());
        let floor = floor_micros(floor.unwrap_or(0.0));
        // Zero is zero in any currency; a floor no bid can meet is below_floor, but only once
        // its currency is known to convert.
        if floor != Some(Micros::ZERO) && !self.fx.convertible(floor_currency, currency) {
            return Err((Reason::Currency, Some(creative), deal));
        }
        let floor = floor.and_then(|m| self.fx.convert_up(m, floor_currency, currency)).ok_or((
            Reason::BelowFloor,
            Some(creative),
            deal,
        ))?;
        Ok(Candidate {
            imp: imp_index,
            campaign: c,
            creative,
            deal,
            floor: floor.0,
            settings: self.bidder_settings(),
            predictions: [f64::NAN; 2],
            rows: [NO_ROW; 2],
            value: 0,
            lower: 0,
            upper: 0,
            price: 0,
            surplus: 0.0,
            cost: 0,
            token: 0,
        })
    }

    /// `{arm}`: the request's arms as `experiment:arm`, comma-separated, in layer order; built
    /// only when some template has the placeholder.
    fn arms_text(&self, assigned: &[Assigned], text: &mut String) {
        text.clear();
        if !self.uses_arm {
            return;
        }
        for (i, a) in assigned.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&self.layers.arm(a).label);
        }
    }

    /// The bidder's settings: its models, its shading, no multiplier.
    fn bidder_settings(&self) -> Settings {
        Settings { models: self.base.map(|m| m.unwrap_or(NO_MODEL)), shading: 0, multiplier_ppm: PPM }
    }

    /// The request's settings for every campaign (the bidder's, with what the arms of
    /// experiments on all campaigns set), and in `scratch.scoped` the arms that act on some
    /// campaigns only: worked out once per request, so a candidate costs a copy, plus a check
    /// per scoped arm.
    fn request_settings(&self, scratch: &mut Scratch) {
        scratch.settings = self.bidder_settings();
        scratch.scoped.clear();
        for a in &scratch.assigned {
            if !self.layers.acts(a) {
                continue;
            }
            if self.layers.experiment(a).scoped() {
                scratch.scoped.push(*a);
            } else {
                self.apply(a, &mut scratch.settings);
            }
        }
    }

    /// Campaign `c`'s settings: the request's, then each scoped arm that applies to `c` (a
    /// parameter belongs to one layer, so no two arms set the same).
    fn settings(&self, c: usize, scratch: &Scratch) -> Settings {
        let mut settings = scratch.settings;
        for a in &scratch.scoped {
            if self.layers.applies(a, c) {
                self.apply(a, &mut settings);
            }
        }
        settings
    }

    fn apply(&self, a: &Assigned, settings: &mut Settings) {
        let o = &self.layers.arm(a).overrides;
        for r in 0..2 {
            if let Some(m) = o.models[r] {
                settings.models[r] = m;
            }
        }
        if let Some(s) = o.shading {
            settings.shading = s;
        }
        if let Some(ppm) = o.multiplier_ppm {
            settings.multiplier_ppm = ppm;
        }
    }

    /// The imp's center of the bidder's shading curve from the win-rate model: predicted once
    /// per imp, and only when some candidate shades on that curve.
    fn market(
        &self,
        request: &Request<'_>,
        imp: usize,
        deals: &[Deal<'_>],
        now: f64,
        scratch: &mut Scratch,
    ) -> Option<i64> {
        let model = self.win_rate.as_ref()?;
        if !scratch.candidates.iter().any(|c| self.shades_on_bidder_curve(request, deals, c)) {
            return None;
        }
        pricing::model_center(win_rate_prediction(model, request, imp, now, &mut scratch.market_row))
    }

    /// Whether `c` is shaded on the bidder's own curve (first price, shading on, no arm curve
    /// of its own): the curve whose center a win-rate model sets.
    fn shades_on_bidder_curve(&self, request: &Request<'_>, deals: &[Deal<'_>], c: &Candidate) -> bool {
        c.settings.shading == 0 && self.shadings[0].enabled && auction_type(request, deals, c) == 1
    }

    /// Scores the imp's candidates: per role, one block per model the candidates use (the
    /// bidder's, or an arm's), candidates in order within a block.
    fn score(&self, request: &Request<'_>, imp: usize, now: f64, scratch: &mut Scratch) {
        for role in Role::ALL {
            let r = role as usize;
            let rows = &mut scratch.rows[r];
            rows.clear();
            scratch.scored.clear();
            for first in 0..scratch.candidates.len() {
                let m = scratch.candidates[first].settings.models[r];
                if m == NO_MODEL
                    || !role.needed_by(self.campaigns[scratch.candidates[first].campaign].goal)
                    || scratch.scored.contains(&m)
                {
                    continue;
                }
                scratch.scored.push(m);
                let model = &self.models[m as usize];
                let width = model.spec.len();
                let block = rows.len();
                let mut count = 0usize;
                for candidate in &mut scratch.candidates[first..] {
                    let campaign = &self.campaigns[candidate.campaign];
                    if candidate.settings.models[r] != m || !role.needed_by(campaign.goal) {
                        continue;
                    }
                    let start = rows.len();
                    if count == 0 {
                        // The request's part of the row is the same for every campaign: built
                        // once per imp and model, then copied with each campaign's attributes.
                        rows.resize(start + width, 0.0);
                        model.spec.extract(request, imp, now, &[], &mut rows[start..]);
                    } else {
                        rows.extend_from_within(block..block + width);
                    }
                    model.spec.fill_campaign(&campaign.attributes[m as usize], &mut rows[start..]);
                    candidate.rows[r] = start as u32;
                    count += 1;
                }
                scratch.scores.clear();
                scratch.scores.resize(count, 0.0);
                model.scorer.predict(&rows[block..], &mut scratch.scores);
                if self.base[r] == Some(m) {
                    self.observer.scored(r, &rows[block..], width, &scratch.scores);
                }
                let mut k = 0;
                for candidate in &mut scratch.candidates[first..] {
                    if candidate.rows[r] != NO_ROW && candidate.settings.models[r] == m {
                        candidate.predictions[r] = scratch.scores.get(k).copied().unwrap_or(f64::NAN);
                        k += 1;
                    }
                }
            }
        }
    }

    /// Copies the winner's rows to `kept_rows` (the next imp reuses `rows`) and points at them.
    fn keep_rows(&self, winner: &mut Candidate, scratch: &mut Scratch) {
        for r in 0..2 {
            let (Some(model), row) = (self.models.get(winner.settings.models[r] as usize), winner.rows[r]) else {
                continue;
            };
            if row == NO_ROW {
                continue;
            }
            let start = row as usize;
            winner.rows[r] = scratch.kept_rows.len() as u32;
            scratch.kept_rows.extend_from_slice(&scratch.rows[r][start..start + model.spec.len()]);
        }
    }

    /// Whether `w` may bid as far as the ledger can tell without holding anything: the money
    /// left in its campaign's account, less what the request's earlier winners of the campaign
    /// hold, covers its price (else `budget`); and the user has a slot left under the
    /// campaign's frequency cap, counting those winners (else `frequency_cap`; a request with
    /// no usable user key has none). Sets `w.cost` (0 when the campaign is not limited, or
    /// there is no ledger), the price converted to the bidder's currency rounding up, so a
    /// hold never falls short of the bid.
    fn covered(&self, w: &mut Candidate, currency: &str, now: f64, scratch: &Scratch) -> Result<(), Reason> {
        w.cost = 0;
        let Some(ledger) = &self.ledger else {
            return Ok(());
        };
        let account = &self.accounts[self.account_of(w.campaign, scratch.budget_arm)];
        let earlier = || scratch.winners.iter().filter(|e| e.campaign == w.campaign);
        if account.limited() {
            let Some(cost) = self.fx.convert_up(Micros(w.price), currency, &self.currency) else {
                return Err(Reason::Budget);
            };
            w.cost = cost.0.max(1);
            let held: i64 = earlier().map(|e| e.cost).sum();
            if account.available().saturating_sub(held) < w.cost {
                return Err(Reason::Budget);
            }
        }
        let campaign = &self.campaigns[w.campaign];
        if let Some(cap) = campaign.cap {
            let Some(user) = scratch.user else {
                return Err(Reason::FrequencyCap);
            };
            let more = earlier().count() as u32 + 1;
            if !ledger.caps().has_room(frequency::key(user, &campaign.id), cap, more, now) {
                return Err(Reason::FrequencyCap);
            }
        }
        Ok(())
    }

    /// The account campaign `c` is paced on and its bids hold against in this request: its
    /// share under the request's budget arm when that arm applies to it, else the campaign's
    /// own.
    fn account_of(&self, c: usize, budget_arm: Option<Assigned>) -> usize {
        budget_arm.and_then(|a| self.shares.get(&(a.index, c)).copied()).unwrap_or(c)
    }

    /// The request's user, for frequency caps: the buyer's id for the user (`user.buyeruid`),
    /// else the exchange's (`user.id`), else the device's advertising id (`device.ifa`), each
    /// hashed with its kind; none when personal data may not be used (`personal`), or when no
    /// campaign is capped (nothing would read it) or there is no ledger (`docs/budget.md`).
    fn user_key(&self, request: &Request<'_>, personal: bool) -> Option<u64> {
        if !(personal && self.capped && self.ledger.is_some()) {
            return None;
        }
        let user = request.user.as_deref();
        let ids = [
            ("b:", user.and_then(|u| u.buyeruid.as_ref())),
            ("u:", user.and_then(|u| u.id.as_ref())),
            ("d:", request.device.as_deref().and_then(|d| d.ifa.as_ref())),
        ];
        ids.into_iter()
            .find_map(|(kind, id)| id.map(|id| id.as_str()).filter(|id| !id.is_empty()).map(|id| (kind, id)))
            .map(|(kind, id)| frequency::user_hash_of(kind, id))
    }

    /// Registers each winner with the ledger, holding its cost; a winner whose campaign can no
    /// longer cover it (another thread's bid took the money since `covered`) loses its imp
    /// (reason `budget`). Whether any winner is left.
    fn open_bids(&self, now: f64, scratch: &mut Scratch) -> bool {
        let Some(ledger) = &self.ledger else {
            return true;
        };
        let (reasons, budget_arm, user) = (&mut scratch.imp_reasons, scratch.budget_arm, scratch.user);
        scratch.winners.retain_mut(|w| {
            let account = &self.accounts[self.account_of(w.campaign, budget_arm)];
            let campaign = &self.campaigns[w.campaign];
            // `covered` let a capped campaign win only with a user key.
            let cap = campaign.cap.zip(user).map(|(cap, user)| (frequency::key(user, &campaign.id), cap));
            match ledger.open(account, w.cost, cap, now) {
                Ok(token) => {
                    w.token = token;
                    true
                }
                Err(refused) => {
                    reasons[w.imp] = Some(match refused {
                        Refused::Budget => Reason::Budget,
                        Refused::FrequencyCap => Reason::FrequencyCap,
                    });
                    false
                }
            }
        });
        !scratch.winners.is_empty()
    }

    /// The imp's winner: the candidate with the highest expected surplus, the first in
    /// candidate order on ties. Shading prices up to 33 win rates per candidate (an `ln` and an
    /// `exp` each), so it is done only for candidates that can still win. Two bounds on a shaded
    /// candidate's surplus `s(b) = (upper - b) * w(b)`, `lower <= b <= upper`: `upper - lower`
    /// (as `w <= 1`), free; and, as `w` rises, splitting at a price `m`,
    /// `max((upper - lower) * w(m), (upper - m) * w(upper))`, two win rates. Candidates go in
    /// descending order of the first; the walk stops once the best surplus found beats it, and
    /// skips a candidate whose second bound it beats, or whose bounds and curve equal those of
    /// one already shaded (campaigns capped at the same `max_bid` over the same floor): it
    /// would get the same surplus, and a tie goes to the one already seen. The winner is the
    /// one ranking every candidate gives (`rank_all`, what `explain` runs; the Rust corpus test
    /// compares them).
    fn rank(
        &self,
        request: &Request<'_>,
        deals: &[Deal<'_>],
        currency: &str,
        scratch: &mut Scratch,
        tally: &mut Tally,
    ) -> Option<Candidate> {
        let order = &mut scratch.order;
        order.clear();
        let shaded = &mut scratch.shaded;
        shaded.clear();
        let curves = &mut scratch.curves;
        curves.clear();
        curves.resize(self.shadings.len() * Media::COUNT, None);
        let (budget_arm, market) = (scratch.budget_arm, scratch.market);
        for (k, c) in scratch.candidates.iter_mut().enumerate() {
            match self.bound(request, deals, c, currency, curves, budget_arm, market) {
                Err(reason) => tally.add(reason),
                Ok(None) => order.push((c.surplus, k, None)),
                Ok(Some(curve)) => order.push(((c.upper - c.lower) as f64, k, Some(curve))),
            }
        }
        // Highest bound first; equal bounds in candidate order.
        order.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut best: Option<(f64, usize)> = None;
        for &(bound, k, curve) in order.iter() {
            let beaten = |bound: f64| best.is_some_and(|(surplus, _)| bound < surplus);
            if beaten(bound) {
                break;
            }
            let c = &mut scratch.candidates[k];
            if let Some(curve) = curve {
                // A few ulps of rounding in ln/exp must not let a bound fall below the surplus
                // it bounds: widen it by far more than they can move it.
                const SLACK: f64 = 1.0 + 1e-9;
                // Surpluses peak low in the span for typical curves: split at 12/32 of it.
                let m = c.lower + (c.upper - c.lower) * SPLIT_STEP / pricing::SHADING_STEPS;
                if best.is_some()
                    && beaten((c.upper - m) as f64 * curve.win_rate(c.upper) * SLACK)
                    && beaten((c.upper - c.lower) as f64 * curve.win_rate(m) * SLACK)
                {
                    continue;
                }
                let key = (c.lower, c.upper, curve);
                // Candidates are in ascending index among equal bounds, so the twin seen first
                // has the lower index and keeps any tie.
                if shaded.contains(&key) {
                    continue;
                }
                shaded.push(key);
                c.price = pricing::shade(c.lower, c.upper, &curve);
                c.surplus = (c.upper - c.price) as f64 * curve.win_rate(c.price);
            }
            if best.is_none_or(|(surplus, j)| c.surplus > surplus || (c.surplus == surplus && k < j)) {
                best = Some((c.surplus, k));
            }
        }
        best.map(|(_, k)| scratch.candidates[k])
    }

    /// `rank` with every candidate priced and written into the trace.
    #[allow(clippy::too_many_arguments)]
    fn rank_all(
        &self,
        request: &Request<'_>,
        imp: &Imp<'_>,
        deals: &[Deal<'_>],
        currency: &str,
        now: f64,
        scratch: &mut Scratch,
        tally: &mut Tally,
        trace: &mut Explanation,
    ) -> Option<Candidate> {
        let mut best: Option<Candidate> = None;
        let mut curves = vec![None; self.shadings.len() * Media::COUNT];
        for k in 0..scratch.candidates.len() {
            let mut candidate = scratch.candidates[k];
            let priced = self
                .bound(request, deals, &mut candidate, currency, &mut curves, scratch.budget_arm, scratch.market)
                .map(|curve| {
                    if let Some(curve) = curve {
                        candidate.price = pricing::shade(candidate.lower, candidate.upper, &curve);
                        candidate.surplus =
                            (candidate.upper - candidate.price) as f64 * curve.win_rate(candidate.price);
                    }
                })
                .and_then(|()| self.covered(&mut candidate, currency, now, scratch));
            trace.candidates.push(self.trace_candidate(request, imp, deals, &candidate, priced.err(), now));
            match priced {
                Err(reason) => tally.add(reason),
                Ok(()) => {
                    if best.is_none_or(|b| candidate.surplus > b.surplus) {
                        best = Some(candidate);
                    }
                }
            }
        }
        best
    }

    /// Value and bounds (`docs/engine.md`, steps 4-6); then either the price and surplus of an
    /// unshaded bid, or the curve to shade on (step 7), which `rank` applies when needed.
    /// `curves` keeps the imp's curve per shading table and media (it depends on the request,
    /// the table, the media and the currency only), so a curve is found and its `ln(center)`
    /// taken once per imp.
    #[allow(clippy::too_many_arguments)]
    fn bound(
        &self,
        request: &Request<'_>,
        deals: &[Deal<'_>],
        c: &mut Candidate,
        currency: &str,
        curves: &mut [Option<Curve>],
        budget_arm: Option<Assigned>,
        market: Option<i64>,
    ) -> Result<Option<Curve>, Reason> {
        let campaign = &self.campaigns[c.campaign];
        let [p_ctr, p_cvr] = c.predictions;
        // The arm's multiplier, then the pacer's, each rounded down (`docs/engine.md`, step 4).
        c.value = pricing::scale(
            pricing::scale(pricing::value(campaign.goal, campaign.amount, p_ctr, p_cvr), c.settings.multiplier_ppm),
            self.pacing.multiplier_ppm(self.account_of(c.campaign, budget_arm)),
        );
        let fx = &self.fx;
        let bidder = self.currency.as_str();
        let upper = fx.convert_down(Micros(c.value.min(campaign.max_bid)), bidder, currency);
        let min_bid = fx.convert_up(Micros(campaign.min_bid), bidder, currency);
        let (Some(upper), Some(min_bid)) = (upper, min_bid) else { return Err(Reason::Currency) };
        c.upper = upper.0;
        c.lower = c.floor.max(min_bid.0).max(1);
        if c.upper < c.lower {
            return Err(if c.upper < c.floor { Reason::BelowFloor } else { Reason::BelowMinBid });
        }
        let table = usize::from(c.settings.shading);
        if auction_type(request, deals, c) == 1 && self.shadings[table].enabled {
            let media = campaign.creatives[c.creative].media;
            let slot = &mut curves[table * Media::COUNT + media as usize];
            // The win-rate model's center is the bidder's table's (an arm's curve is its own).
            let market = if table == 0 { market } else { None };
            return Ok(Some(
                *slot.get_or_insert_with(|| self.curve(request, media, currency, &self.shadings[table], market)),
            ));
        }
        // Second price, or first price unshaded: the bid is the bound, ranked by it.
        c.price = c.upper;
        c.surplus = c.upper as f64;
        Ok(None)
    }

    /// The win-rate curve of shading table `shading` for this request and media, in the bid
    /// currency's units: the first matching segment's (else the table's) center and scale,
    /// with `market`, the win-rate model's center for the imp, in place of the center.
    fn curve(
        &self,
        request: &Request<'_>,
        media: Media,
        currency: &str,
        shading: &Shading,
        market: Option<i64>,
    ) -> Curve {
        let device = request.device.as_deref();
        let country = device.and_then(|d| d.geo.as_ref()).and_then(|g| g.country.as_ref());
        let devicetype = device.and_then(|d| d.devicetype);
        let matches = |s: &&ShadingSegment| {
            (s.countries.is_empty() || country.is_some_and(|c| s.countries.iter().any(|x| x.eq_ignore_ascii_case(c))))
                && (s.device_types.is_empty() || devicetype.is_some_and(|d| s.device_types.contains(&d)))
                && (s.media.is_empty() || s.media.contains(&media))
        };
        let (center, scale) =
            shading.segments.iter().find(matches).map_or(shading.default_curve, |s| (s.center, s.scale));
        let center = market.unwrap_or(center);
        let center = self.fx.convert_down(Micros(center), &self.currency, currency).map_or(0, |m| m.0);
        let center = if center > 0 { center as f64 / 1e6 } else { 1e-6 };
        Curve::new(center, scale)
    }
}

/// The candidate's auction type: its deal's `at` when the deal has one, else the request's,
/// else 2 (second price).
fn auction_type(request: &Request<'_>, deals: &[Deal<'_>], c: &Candidate) -> i32 {
    c.deal.and_then(|d| deals[d].at).or(request.at).unwrap_or(2)
}

/// The win-rate model's prediction for imp `imp` (the log of its curve's center), the imp's
/// feature row left in `row`. The model reads no campaign attributes (`with_win_rate`).
fn win_rate_prediction(model: &RoleModel, request: &Request<'_>, imp: usize, now: f64, row: &mut Vec<f64>) -> f64 {
    row.clear();
    row.resize(model.spec.len(), 0.0);
    model.spec.extract(request, imp, now, &[], row);
    let mut prediction = [f64::NAN];
    model.scorer.predict(row, &mut prediction);
    prediction[0]
}

/// The record of a body that did not parse.
#[cold]
fn invalid_record(now: f64, err: &RequestError) -> impl FnOnce(u64) -> DecisionRecord + '_ {
    move |latency_ns| DecisionRecord {
        v: RECORD_VERSION,
        ts: now,
        request: None,
        bid: false,
        reason: Some(Reason::Invalid.as_str()),
        nbr: Some(Reason::Invalid.nbr()),
        error: Some(err.to_string()),
        currency: None,
        test: false,
        latency_ns,
        arms: log::ByExperiment::default(),
        units: log::ByExperiment::default(),
        models: log::Pairs(Vec::new()),
        imps: Vec::new(),
    }
}

enum Decided<'s> {
    Bid { currency: &'s str },
    NoBid(Reason),
}
