from distillwatch.intel.fingerprint import (
    EVIDENCE_WEIGHTS,
    compare,
    distribution_similarity,
    from_campaign,
    hash_text,
    sketch_similarity,
)
from tests.intel.intel_factory import make_campaign


def test_fingerprint_holds_no_raw_text():
    c = make_campaign()
    fp = from_campaign(c)
    dumped = fp.model_dump_json()
    assert "parses" not in dumped  # sample prompt
    assert "python-httpx" not in dumped  # user agents only as digests
    assert hash_text("python-httpx/0.27") in fp.user_agents
    assert set(fp.prefixes) == {"203.0.113.0/24", "198.51.100.0/24", "2001:db8:1::/48"}
    assert set(fp.asns) == {"64500"}
    assert fp.signup_rate_per_hour == 50.0


def test_identical_campaigns_are_fully_similar():
    fp = from_campaign(make_campaign())
    sim = compare(fp, fp)
    assert sim.overall == 1.0
    assert all(v == 1.0 for v in sim.by_type.values() if v is not None)
    # no hour profile without exchanges, but the rate per account-day is known
    assert sim.by_type["timing"] == 1.0


def test_unrelated_campaigns_score_low_and_operator_evidence_is_zero():
    a = from_campaign(make_campaign())
    b = from_campaign(
        make_campaign(
            "C9",
            prefixes=("192.0.2.0/24",),
            ipv6=(),
            asns=("64511",),
            templates=("1111111111111111",),
            domains=("other.example",),
            capabilities={"math_reasoning": 0.8, "chat": 0.2},
        )
    )
    sim = compare(a, b)
    assert sim.by_type["templates"] == 0.0
    assert sim.by_type["infrastructure"] < 0.2  # only the user agent is shared
    assert sim.by_type["capabilities"] < 0.3
    assert sim.overall < 0.35


def test_growth_keeps_similarity_high():
    before = from_campaign(make_campaign())
    grown = from_campaign(
        make_campaign(
            accounts=400,
            exchanges=10400,
            prefixes=("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24", "100.64.1.0/24"),
        )
    )
    sim = compare(before, grown)
    assert sim.overall > 0.8
    assert "2 of 3 prefixes shared" not in sim.details["infrastructure"]
    assert "3 of 3 prefixes shared" in sim.details["infrastructure"]


def test_missing_evidence_is_not_counted_as_agreement():
    a = from_campaign(make_campaign())
    b = a.model_copy(
        update={
            "templates": {},
            "email_domains": {},
            "signup_rate_per_hour": None,
            "disposable_email_share": None,
        }
    )
    sim = compare(a, b)
    assert sim.by_type["templates"] is None and sim.by_type["registration"] is None
    assert "templates: no data" in sim.explain()


def test_distribution_and_sketch_similarity():
    assert distribution_similarity({}, {"x": 1.0}) is None
    assert distribution_similarity({"x": 0.5, "y": 0.5}, {"x": 1.0}) == 0.5 * (0.5 / 1.5) + 0.5 * 1.0
    assert sketch_similarity([1, 2, 3, 4], [1, 2, 9, 9]) == 0.5
    assert sketch_similarity([], [1]) is None
    assert abs(sum(EVIDENCE_WEIGHTS.values()) - 1.0) < 1e-9


def test_free_mail_domains_are_no_registration_evidence():
    fp = from_campaign(make_campaign(domains=("gmail.com", "mailbox.example")))
    assert set(fp.email_domains) == {"mailbox.example"}
    both_gmail = compare(
        from_campaign(make_campaign(domains=("gmail.com",))),
        from_campaign(make_campaign(domains=("gmail.com",))),
    )
    # only the sign-up rate and disposable share remain to compare: no domain overlap is claimed
    assert "e-mail domains shared" not in both_gmail.details.get("registration", "")
