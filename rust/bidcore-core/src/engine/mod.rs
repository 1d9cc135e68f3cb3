//! The bidding engine: request bytes in, the OpenRTB response (or a no-bid reason) out.
//!
//! [`Engine`] is built once from a [`Plan`] and the models by role, is immutable and shared by
//! threads; per request it needs a parse arena and a [`Scratch`] that the caller keeps per
//! thread, so a request allocates nothing once they have grown. The decision is
//! `docs/engine.md`, rule by rule; `bidcore.reference` is the same decision in plain Python.

mod bitset;
mod creative;
mod explain;
mod plan;
mod pricing;
mod reason;
mod respond;
mod targeting;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bumpalo::Bump;

pub use explain::{CandidateTrace, Explanation, ImpOutcome};
pub use plan::{CampaignPlan, CreativePlan, GoalKind, Plan};
pub use reason::{Counters, Reason};

use self::bitset::Bitset;
use self::creative::{Creative, Media};
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

/// A model for one role: the scorer, its feature spec, and the names of the campaign
/// attributes the spec reads (in the order `FeatureSpec::campaign` indexes them).
#[derive(Clone)]
pub struct RoleModel {
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
    /// Per role, the campaign's attribute values in the role's spec order (NaN when unset).
    attributes: [Vec<f64>; 2],
}

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
    rows: Vec<f64>,
    scores: Vec<f64>,
    winners: Vec<Candidate>,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    imp: usize,
    campaign: usize,
    creative: usize,
    /// Index of the deal in the imp's `pmp.deals`.
    deal: Option<usize>,
    floor: i64,
    predictions: [f64; 2],
    value: i64,
    lower: i64,
    upper: i64,
    price: i64,
    surplus: f64,
}

pub struct Engine {
    parser: RequestParser,
    seat: String,
    currency: String,
    fx: FxTable,
    shading: bool,
    default_curve: (i64, f64),
    segments: Vec<ShadingSegment>,
    campaigns: Vec<Campaign>,
    index: TargetingIndex,
    /// Every campaign: where a request's eligible set starts.
    all: Bitset,
    models: [Option<RoleModel>; 2],
    counters: Counters,
}

impl Engine {
    /// Builds the engine; checks what the decision relies on (positive caps, known media,
    /// templates, a model for every goal that needs one, model widths equal to their specs).
    pub fn new(plan: Plan, models: [Option<RoleModel>; 2], parser: RequestParser) -> Result<Engine, String> {
        let fx = FxTable::new(plan.fx.clone())?;
        if !plan.fx.is_empty() && fx.rate(&plan.currency).is_none() {
            return Err(format!("fx has no rate for the bidder's currency {}", plan.currency));
        }
        for (role, model) in Role::ALL.iter().zip(&models) {
            if let Some(m) = model {
                if m.scorer.num_features() != m.spec.len() || m.scorer.num_outputs() != 1 {
                    return Err(format!(
                        "the {} model takes {} features and gives {} outputs; its spec has {} features (one output needed)",
                        role.as_str(),
                        m.scorer.num_features(),
                        m.scorer.num_outputs(),
                        m.spec.len()
                    ));
                }
            }
        }
        let defaults = [&plan.nurl, &plan.burl, &plan.lurl];
        let mut campaigns = Vec::with_capacity(plan.campaigns.len());
        for c in &plan.campaigns {
            if c.max_bid <= 0 || c.min_bid < 0 || c.min_bid > c.max_bid || c.amount < 0 {
                return Err(format!("campaign {}: amounts out of range", c.id));
            }
            for role in Role::ALL {
                if role.needed_by(c.goal) && models[role as usize].is_none() {
                    return Err(format!("campaign {} needs a {} model", c.id, role.as_str()));
                }
            }
            let creatives =
                c.creatives.iter().map(|p| Creative::build(p, defaults)).collect::<Result<Vec<_>, String>>()?;
            let attributes = Role::ALL.map(|role| match &models[role as usize] {
                Some(m) => m
                    .attributes
                    .iter()
                    .map(|name| c.features.iter().find(|(n, _)| n == name).map_or(f64::NAN, |&(_, v)| v))
                    .collect(),
                None => Vec::new(),
            });
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
        Ok(Engine {
            parser,
            index: TargetingIndex::build(&plan.campaigns),
            all: Bitset::full(plan.campaigns.len()),
            seat: plan.seat,
            currency: plan.currency.to_ascii_uppercase(),
            fx,
            shading: plan.shading.enabled,
            default_curve: (plan.shading.center, plan.shading.scale),
            segments,
            campaigns,
            models,
            counters: Counters::default(),
        })
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn campaign_ids(&self) -> impl Iterator<Item = &str> {
        self.campaigns.iter().map(|c| c.id.as_str())
    }

    /// Decides on `body` at time `now` (seconds since the epoch) and, on a bid, appends the
    /// response JSON to `out`. An invalid body is an error (counted as `invalid`).
    pub fn bid(
        &self,
        body: &[u8],
        now: f64,
        arena: &Bump,
        scratch: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, RequestError> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let request = match self.parser.parse(body, arena) {
            Ok(request) => request,
            Err(err) => {
                self.counters.no_bid(Reason::Invalid);
                return Err(err);
            }
        };
        let outcome = self.decide(&request, now, scratch, None);
        match outcome {
            Decided::Bid { currency } => {
                self.counters.bids.fetch_add(1, Ordering::Relaxed);
                self.counters.imp_bids.fetch_add(scratch.winners.len() as u64, Ordering::Relaxed);
                self.write_response(&request, currency, &scratch.winners, out);
                Ok(Outcome::Bid)
            }
            Decided::NoBid(reason) => {
                self.counters.no_bid(reason);
                Ok(Outcome::NoBid(reason))
            }
        }
    }

    /// The whole decision with its reasons and arithmetic, for "why no bid". Counts nothing.
    pub fn explain(&self, body: &[u8], now: f64, arena: &Bump) -> Result<(Explanation, Option<Vec<u8>>), RequestError> {
        let request = self.parser.parse(body, arena)?;
        let mut scratch = Scratch::default();
        let mut trace = Explanation::default();
        let decided = self.decide(&request, now, &mut scratch, Some(&mut trace));
        let response = match decided {
            Decided::Bid { currency } => {
                let mut out = Vec::new();
                self.write_response(&request, currency, &scratch.winners, &mut out);
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
        self.index.eligible(request, &scratch.facts, now, &mut scratch.eligible, &mut scratch.sets);
        if let Some(t) = trace.as_deref_mut() {
            for (i, c) in self.campaigns.iter().enumerate() {
                let failure = if scratch.eligible.contains(i) {
                    None
                } else {
                    self.index.first_failure(i, request, &scratch.facts, now)
                };
                t.targeting.push((c.id.clone(), failure));
            }
        }
        if scratch.eligible.is_empty() {
            return self.request_no_bid(request, Reason::NoCampaign, trace);
        }
        let imps = request.imp.as_deref().unwrap_or(&[]);
        let mut first_reason = None;
        for (i, imp) in imps.iter().enumerate() {
            let reason = self.decide_imp(request, i, imp, currency, now, scratch, trace.as_deref_mut());
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
                Ok(candidate) => scratch.candidates.push(candidate),
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
        let mut best: Option<Candidate> = None;
        for k in 0..scratch.candidates.len() {
            let mut candidate = scratch.candidates[k];
            let priced = self.price(request, deals, &mut candidate, currency);
            if let Some(t) = trace.as_deref_mut() {
                t.candidates.push(self.trace_candidate(request, imp, deals, &candidate, priced.err(), now));
            }
            match priced {
                Err(reason) => tally.add(reason),
                Ok(()) => {
                    if best.is_none_or(|b| candidate.surplus > b.surplus) {
                        best = Some(candidate);
                    }
                }
            }
        }
        match best {
            Some(winner) => {
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
            predictions: [f64::NAN; 2],
            value: 0,
            lower: 0,
            upper: 0,
            price: 0,
            surplus: 0.0,
        })
    }

    /// Scores the imp's candidates, one block per role, in candidate order.
    fn score(&self, request: &Request<'_>, imp: usize, now: f64, scratch: &mut Scratch) {
        for role in Role::ALL {
            let Some(model) = &self.models[role as usize] else { continue };
            let width = model.spec.len();
            scratch.rows.clear();
            let mut count = 0;
            for candidate in &scratch.candidates {
                let campaign = &self.campaigns[candidate.campaign];
                if role.needed_by(campaign.goal) {
                    let start = scratch.rows.len();
                    if count == 0 {
                        // The request's part of the row is the same for every campaign: built
                        // once per imp, then copied with each campaign's attributes filled in.
                        scratch.rows.resize(width, 0.0);
                        model.spec.extract(request, imp, now, &[], &mut scratch.rows);
                    } else {
                        scratch.rows.extend_from_within(0..width);
                    }
                    model.spec.fill_campaign(&campaign.attributes[role as usize], &mut scratch.rows[start..]);
                    count += 1;
                }
            }
            if count == 0 {
                continue;
            }
            scratch.scores.clear();
            scratch.scores.resize(count, 0.0);
            model.scorer.predict(&scratch.rows, &mut scratch.scores);
            let mut next = scratch.scores.iter();
            for candidate in &mut scratch.candidates {
                if role.needed_by(self.campaigns[candidate.campaign].goal) {
                    candidate.predictions[role as usize] = next.next().copied().unwrap_or(f64::NAN);
                }
            }
        }
    }

    /// Value, bounds, price and expected surplus (`docs/engine.md`, steps 4-7).
    fn price(
        &self,
        request: &Request<'_>,
        deals: &[Deal<'_>],
        c: &mut Candidate,
        currency: &str,
    ) -> Result<(), Reason> {
        let campaign = &self.campaigns[c.campaign];
        let [p_ctr, p_cvr] = c.predictions;
        c.value = pricing::value(campaign.goal, campaign.amount, p_ctr, p_cvr);
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
        let at = c.deal.and_then(|d| deals[d].at).or(request.at).unwrap_or(2);
        if at == 1 && self.shading {
            let curve = self.curve(request, campaign.creatives[c.creative].media, currency);
            c.price = pricing::shade(c.lower, c.upper, &curve);
            c.surplus = (c.upper - c.price) as f64 * curve.win_rate(c.price);
        } else {
            // Second price, or first price unshaded: the bid is the bound, ranked by it.
            c.price = c.upper;
            c.surplus = c.upper as f64;
        }
        Ok(())
    }

    /// The win-rate curve for this request and media, in the bid currency's units.
    fn curve(&self, request: &Request<'_>, media: Media, currency: &str) -> Curve {
        let device = request.device.as_deref();
        let country = device.and_then(|d| d.geo.as_ref()).and_then(|g| g.country.as_ref());
        let devicetype = device.and_then(|d| d.devicetype);
        let matches = |s: &&ShadingSegment| {
            (s.countries.is_empty() || country.is_some_and(|c| s.countries.iter().any(|x| x.eq_ignore_ascii_case(c))))
                && (s.device_types.is_empty() || devicetype.is_some_and(|d| s.device_types.contains(&d)))
                && (s.media.is_empty() || s.media.contains(&media))
        };
        let (center, scale) = self.segments.iter().find(matches).map_or(self.default_curve, |s| (s.center, s.scale));
        let center = self.fx.convert_down(Micros(center), &self.currency, currency).map_or(0, |m| m.0);
        let center = if center > 0 { center as f64 / 1e6 } else { 1e-6 };
        Curve::new(center, scale)
    }
}

enum Decided<'s> {
    Bid { currency: &'s str },
    NoBid(Reason),
}
