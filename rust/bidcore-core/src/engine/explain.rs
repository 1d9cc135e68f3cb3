//! "Why no bid": the decision written out — targeting per campaign, then per imp and campaign
//! the rule that excluded it, or its features, scores and price arithmetic.

use super::reason::Reason;
use super::{win_rate_prediction, Candidate, Engine, Role};
use crate::openrtb::request::{Deal, Imp};
use crate::openrtb::Request;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Explanation {
    /// The request's no-bid reason (None when it bid).
    pub reason: Option<Reason>,
    pub currency: Option<String>,
    /// Whether user-level data was used (not under COPPA, LMT, GDPR without consent).
    pub personal: bool,
    /// The request's arms: (experiment key, arm name) in layer order.
    pub arms: Vec<(String, String)>,
    /// Per campaign in config order: the targeting rule that excluded it, if any.
    pub targeting: Vec<(String, Option<Reason>)>,
    pub candidates: Vec<CandidateTrace>,
    pub imps: Vec<ImpOutcome>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CandidateTrace {
    pub imp: String,
    pub campaign: String,
    pub excluded_by: Option<Reason>,
    pub creative: Option<String>,
    pub deal: Option<String>,
    /// Per role that scored the candidate: its feature row and prediction.
    pub features: Vec<(&'static str, Vec<f64>)>,
    pub scores: Vec<(&'static str, f64)>,
    pub value: Option<i64>,
    pub floor: Option<i64>,
    pub lower: Option<i64>,
    pub upper: Option<i64>,
    pub price: Option<i64>,
    pub surplus: Option<f64>,
}

impl CandidateTrace {
    pub(super) fn excluded(
        imp: &Imp<'_>,
        campaign: &str,
        reason: Reason,
        creative: Option<String>,
        deal: Option<String>,
    ) -> Self {
        CandidateTrace {
            imp: imp.id.map(|s| s.to_string()).unwrap_or_default(),
            campaign: campaign.to_owned(),
            excluded_by: Some(reason),
            creative,
            deal,
            ..CandidateTrace::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImpOutcome {
    pub imp: String,
    pub campaign: Option<String>,
    pub creative: Option<String>,
    pub price: Option<i64>,
    pub deal: Option<String>,
    pub reason: Option<Reason>,
}

impl Engine {
    pub(super) fn trace_candidate(
        &self,
        request: &Request<'_>,
        imp: &Imp<'_>,
        deals: &[Deal<'_>],
        c: &Candidate,
        excluded_by: Option<Reason>,
        now: f64,
    ) -> CandidateTrace {
        let campaign = &self.campaigns[c.campaign];
        let mut trace = CandidateTrace {
            imp: imp.id.map(|s| s.to_string()).unwrap_or_default(),
            campaign: campaign.id.clone(),
            excluded_by,
            creative: Some(campaign.creatives[c.creative].id.clone()),
            deal: c.deal.and_then(|d| deals[d].id.map(|s| s.to_string())),
            value: Some(c.value),
            floor: Some(c.floor),
            lower: Some(c.lower),
            upper: Some(c.upper),
            ..CandidateTrace::default()
        };
        // The ledger's reasons come after pricing: such a candidate shows the price it lacked
        // the money or the user's slot for.
        if matches!(excluded_by, None | Some(Reason::Budget | Reason::FrequencyCap)) {
            trace.price = Some(c.price);
            trace.surplus = Some(c.surplus);
        }
        for role in Role::ALL {
            let m = c.settings.models[role as usize];
            let Some(model) = self.models.get(m as usize) else { continue };
            if role.needed_by(campaign.goal) {
                let mut row = vec![0.0; model.spec.len()];
                model.spec.extract(request, c.imp, now, &campaign.attributes[m as usize], &mut row);
                trace.features.push((role.as_str(), row));
                trace.scores.push((role.as_str(), c.predictions[role as usize]));
            }
        }
        // A candidate shading on the bidder's curve with a win-rate model: the imp's row and
        // the model's prediction (the log of the curve's center).
        if let Some(model) = self.win_rate.as_ref().filter(|_| self.shades_on_bidder_curve(request, deals, c)) {
            let mut row = Vec::new();
            let prediction = win_rate_prediction(model, request, c.imp, now, &mut row);
            trace.features.push(("win_rate", row));
            trace.scores.push(("win_rate", prediction));
        }
        trace
    }

    pub(super) fn imp_outcome(&self, imp: &Imp<'_>, won: Option<&Candidate>, reason: Option<Reason>) -> ImpOutcome {
        let id = imp.id.map(|s| s.to_string()).unwrap_or_default();
        let deals = imp.pmp.as_deref().and_then(|p| p.deals.as_deref()).unwrap_or(&[]);
        match won {
            Some(w) => {
                let campaign = &self.campaigns[w.campaign];
                ImpOutcome {
                    imp: id,
                    campaign: Some(campaign.id.clone()),
                    creative: Some(campaign.creatives[w.creative].id.clone()),
                    price: Some(w.price),
                    deal: w.deal.and_then(|d| deals[d].id.map(|s| s.to_string())),
                    reason: None,
                }
            }
            None => ImpOutcome { imp: id, reason, ..ImpOutcome::default() },
        }
    }
}
