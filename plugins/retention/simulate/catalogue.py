"""The simulated product: event catalogue, plans and prices, coupons, and name pools.

Event names and milestones follow docs/DATA_CONTRACTS.md section 1 (product catalogue).
"""

from __future__ import annotations

from dataclasses import dataclass

# --- product events (track) -------------------------------------------------------------

PROJECT_CREATED = "Project Created"
TEAMMATE_INVITED = "Teammate Invited"
INTEGRATION_INSTALLED = "Integration Installed"
REPORT_CREATED = "Report Created"
CAMPAIGN_SENT = "Campaign Sent"
AUTOMATION_CREATED = "Automation Created"
DASHBOARD_VIEWED = "Dashboard Viewed"
EXPORT_DOWNLOADED = "Export Downloaded"
COMMENT_ADDED = "Comment Added"
SIGNED_IN = "Signed In"
PLAN_UPGRADED = "Plan Upgraded"
PLAN_DOWNGRADED = "Plan Downgraded"

KEY_FEATURES: tuple[str, ...] = (
    PROJECT_CREATED,
    INTEGRATION_INSTALLED,
    REPORT_CREATED,
    CAMPAIGN_SENT,
    AUTOMATION_CREATED,
)
EVERYDAY_EVENTS: tuple[str, ...] = (DASHBOARD_VIEWED, EXPORT_DOWNLOADED, COMMENT_ADDED, SIGNED_IN)
# Events drawn at random each day: the key features (once adopted) and the everyday ones.
USAGE_EVENTS: tuple[str, ...] = KEY_FEATURES + EVERYDAY_EVENTS
# Relative frequency of each usage event among an account's daily events.
USAGE_WEIGHTS: tuple[float, ...] = (0.6, 0.08, 1.0, 0.7, 0.35, 2.0, 0.4, 1.0, 2.5)
# Events only emitted by the lifecycle (invites, plan changes).
LIFECYCLE_EVENTS: tuple[str, ...] = (TEAMMATE_INVITED, PLAN_UPGRADED, PLAN_DOWNGRADED)
ALL_EVENTS: tuple[str, ...] = USAGE_EVENTS + LIFECYCLE_EVENTS

INTEGRATIONS = ("slack", "hubspot", "salesforce", "zapier", "google_sheets", "intercom", "segment")
REPORT_TYPES = ("funnel", "retention", "revenue", "engagement")
CHANNELS = ("email", "in_app", "sms")

# --- billing catalogue -------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    key: str  # also the Segment `plan` trait and Plan Upgraded/Downgraded values
    name: str
    rank: int  # for upgrade/downgrade direction
    month_cents: int  # per seat per month
    year_cents: int  # per seat per year (annual prices: two months free)


FREE = Plan("free", "Free", 0, 0, 0)
STARTER = Plan("starter", "Starter", 1, 1500, 15000)
GROWTH = Plan("growth", "Growth", 2, 3500, 35000)
SCALE = Plan("scale", "Scale", 3, 6500, 65000)
PAID_PLANS: tuple[Plan, ...] = (STARTER, GROWTH, SCALE)
PLANS: dict[str, Plan] = {p.key: p for p in (FREE, *PAID_PLANS)}

ADDON_PRODUCT = "prod_analytics_addon"
ADDON_PRICE = "price_analytics_addon_month"
ADDON_CENTS = 9900  # flat, quantity 1
METERED_PRODUCT = "prod_api_calls"
METERED_PRICE = "price_api_calls_metered"
METERED_CENTS_PER_UNIT = 200  # per 1,000 API calls, billed in arrears
ONE_OFF_PRODUCT = "prod_onboarding"
ONE_OFF_PRICE = "price_onboarding_once"
ONE_OFF_CENTS = 50000
VAT_RATE_ID = "txr_vat_20"
VAT_PERCENT = 20
VAT_COUNTRIES = frozenset({"GB", "DE", "FR", "NL", "ES"})


def plan_product_id(plan: Plan) -> str:
    return f"prod_{plan.key}"


def plan_price_id(plan: Plan, interval: str) -> str:
    return f"price_{plan.key}_{interval}"


@dataclass(frozen=True)
class Coupon:
    id: str
    name: str
    percent_off: float | None
    amount_off: int | None
    duration: str  # once | repeating | forever
    duration_in_months: int | None


WELCOME = Coupon("WELCOME20", "20% off your first invoice", 20.0, None, "once", None)
QUARTER = Coupon("QUARTER25", "25% off for 3 months", 25.0, None, "repeating", 3)
PARTNER = Coupon("PARTNER10", "$10 off every invoice", None, 1000, "forever", None)
NONPROFIT = Coupon("NONPROFIT50", "Non-profit 50% off", 50.0, None, "forever", None)
SAVE_OFFER = Coupon("SAVE100_3M", "Retention offer: 3 months free", 100.0, None, "repeating", 3)
COUPONS: tuple[Coupon, ...] = (WELCOME, QUARTER, PARTNER, NONPROFIT, SAVE_OFFER)

# --- accounts ----------------------------------------------------------------------------

EMPLOYEE_BANDS = ("1-10", "11-50", "51-200", "201-1000", "1001+")
EMPLOYEE_BAND_P = (0.38, 0.32, 0.18, 0.09, 0.03)
SEATS_MEAN_BY_BAND = (2.0, 4.0, 8.0, 14.0, 24.0)
INDUSTRIES = (
    "software", "ecommerce", "fintech", "healthcare", "education", "media",
    "agency", "manufacturing", "nonprofit", "real_estate",
)
COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "CA", "AU", "NL", "ES", "BR", "IN")
NAME_PARTS_A = (
    "Acme", "Blue", "Bright", "Cedar", "Delta", "Echo", "Falcon", "Granite", "Harbor", "Iris",
    "Juniper", "Kite", "Lumen", "Maple", "Nova", "Orbit", "Pioneer", "Quartz", "River", "Summit",
    "Tidal", "Umbra", "Vertex", "Willow", "Zephyr", "Atlas", "Beacon", "Copper", "Drift", "Ember",
)
NAME_PARTS_B = (
    "Labs", "Works", "Systems", "Analytics", "Health", "Logistics", "Studio", "Commerce",
    "Partners", "Digital", "Cloud", "Foods", "Energy", "Media", "Robotics", "Finance",
)
FIRST_NAMES = (
    "Ava", "Ben", "Chloe", "Dan", "Ella", "Finn", "Grace", "Hugo", "Isla", "Jack", "Kara",
    "Leo", "Maya", "Noah", "Olive", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor",
    "Wen", "Xavi", "Yara", "Zoe", "Amir", "Priya", "Kenji", "Lucia",
)
LAST_NAMES = (
    "Adams", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jones",
    "Khan", "Lopez", "Martin", "Nguyen", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber",
)
ROLES = ("admin", "manager", "analyst", "marketer", "engineer", "viewer")

# --- feedback ----------------------------------------------------------------------------

SUPPORT_TOPICS = (
    "billing", "login", "integration_sync", "performance", "data_import", "permissions",
    "reporting", "feature_request", "bug",
)
NPS_COMMENTS = {
    "promoter": (
        "Love the reports, saves us hours every week",
        "Great product and the team is responsive",
        "Automations changed how we work",
    ),
    "passive": (
        "Does the job, a few rough edges",
        "Good but pricey for what we use",
        "Would like more integrations",
    ),
    "detractor": (
        "Too hard to set up, we barely use it",
        "Sync keeps breaking",
        "Too expensive for the value we get",
        "Support took days to answer",
    ),
}
