"""Scoring: campaign evidence and confidence, account scores, calibrated verdicts, reasons."""

from distillwatch.score.accounts import AccountScores, score_accounts
from distillwatch.score.campaigns import CampaignEvidence, CommunityRules, assess_communities

__all__ = ["AccountScores", "CampaignEvidence", "CommunityRules", "assess_communities", "score_accounts"]
