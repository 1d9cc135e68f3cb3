//! Why a request, an imp or a campaign got no bid: bidcore's reasons, in the order that breaks
//! ties, each with the OpenRTB no-bid code (`nbr`) that fits it.

macro_rules! reasons {
    ($($variant:ident = $name:literal, $nbr:literal;)*) => {
        /// A no-bid reason. The order is `docs/engine.md`'s: targeting rules in the table's order,
        /// then the per-imp steps; an imp's reason is its campaigns' most common one, ties going
        /// to the earlier.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Reason {
            $($variant,)*
        }

        impl Reason {
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $name,)*
                }
            }

            /// OpenRTB 2.x's no-bid reason code for a no-bid response body.
            pub fn nbr(self) -> i32 {
                match self {
                    $(Reason::$variant => $nbr,)*
                }
            }
        }
    };
}

reasons! {
    Invalid = "invalid", 2;
    // The request's tmax (less the configured network margin) ran out before the answer.
    Late = "late", 1;
    BlockedSeat = "blocked_seat", 0;
    NoCampaign = "no_campaign", 0;
    Budget = "budget", 0;
    // The user has no slot left under the campaign's frequency cap (or no usable user key).
    FrequencyCap = "frequency_cap", 0;
    // Targeting, request-level.
    Country = "country", 0;
    Region = "region", 0;
    DeviceType = "device_type", 6;
    Os = "os", 6;
    ConnectionType = "connection_type", 0;
    Domain = "domain", 0;
    DomainBlock = "domain_block", 7;
    Bundle = "bundle", 0;
    BundleBlock = "bundle_block", 7;
    Category = "category", 0;
    CategoryBlock = "category_block", 7;
    Segment = "segment", 8;
    Daypart = "daypart", 0;
    // Per imp and campaign.
    PrivateAuction = "private_auction", 0;
    Deal = "deal", 0;
    Media = "media", 0;
    Size = "size", 0;
    Duration = "duration", 0;
    Mime = "mime", 0;
    Secure = "secure", 0;
    BlockedCat = "blocked_cat", 0;
    BlockedAdomain = "blocked_adomain", 0;
    BlockedApp = "blocked_app", 0;
    BlockedAttr = "blocked_attr", 0;
    NoCreative = "no_creative", 0;
    Currency = "currency", 0;
    BelowFloor = "below_floor", 0;
    BelowMinBid = "below_min_bid", 0;
}

pub const NUM_REASONS: usize = Reason::ALL.len();

/// Tallies reasons to find the most common (ties to the earlier in [`Reason`]'s order).
#[derive(Debug, Clone, Copy)]
pub struct Tally([u16; NUM_REASONS]);

impl Default for Tally {
    fn default() -> Self {
        Tally([0; NUM_REASONS])
    }
}

impl Tally {
    pub fn add(&mut self, reason: Reason) {
        let slot = &mut self.0[reason as usize];
        *slot = slot.saturating_add(1);
    }

    pub fn most_common(&self) -> Option<Reason> {
        let mut best: Option<(u16, Reason)> = None;
        for &reason in Reason::ALL {
            let n = self.0[reason as usize];
            if n > 0 && best.is_none_or(|(b, _)| n > b) {
                best = Some((n, reason));
            }
        }
        best.map(|(_, r)| r)
    }
}
