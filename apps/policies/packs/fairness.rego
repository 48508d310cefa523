# Fairness: demographic parity and equalized odds differences within the model's thresholds.
# Applies to high-risk models and to every model with fairness thresholds set; thresholds not
# set default to 0.1. Checked per sensitive column of the latest bias report.
package assay.fairness

import rego.v1

title := "Fairness"

default applies := false

applies if input.model.risk_tier == "high"

applies if count(input.model.fairness_thresholds) > 0

clause_dp := "Assay fairness policy F-1 (demographic parity difference, fairlearn)"

clause_eo := "Assay fairness policy F-2 (equalized odds difference, fairlearn)"

threshold(metric) := object.get(input.model.fairness_thresholds, metric, 0.1)

rules := [
	{"rule": "fairness.bias_report", "clause": "Assay fairness policy F-0 (a bias report exists)", "title": "A bias report exists", "applies": true},
	{"rule": "fairness.demographic_parity", "clause": clause_dp, "title": sprintf("Demographic parity difference at most %v", [threshold("demographic_parity_difference")]), "applies": true},
	{"rule": "fairness.equalized_odds", "clause": clause_eo, "title": sprintf("Equalized odds difference at most %v", [threshold("equalized_odds_difference")]), "applies": true},
]

missing_evidence contains m if {
	input.evidence.bias == null
	m := {
		"kind": "bias",
		"subject": concat("", [input.model.name, " v", format_int(input.version.number, 10)]),
		"reason": "Assay fairness policy F-0: fairness thresholds are checked on a bias report, and the version has none",
		"rule": "fairness.bias_report",
	}
}

violations contains v if {
	some column, report in input.evidence.bias.by_column
	value := report.demographic_parity_difference
	value > threshold("demographic_parity_difference")
	v := {
		"rule": "fairness.demographic_parity",
		"message": concat("", ["Assay fairness policy F-1: demographic parity difference over ", column, " is ", sprintf("%v", [round(value * 10000) / 10000]), ", above the threshold ", sprintf("%v", [threshold("demographic_parity_difference")])]),
		"clause": clause_dp,
		"severity": "blocking",
	}
}

violations contains v if {
	some column, report in input.evidence.bias.by_column
	value := report.equalized_odds_difference
	value > threshold("equalized_odds_difference")
	v := {
		"rule": "fairness.equalized_odds",
		"message": concat("", ["Assay fairness policy F-2: equalized odds difference over ", column, " is ", sprintf("%v", [round(value * 10000) / 10000]), ", above the threshold ", sprintf("%v", [threshold("equalized_odds_difference")])]),
		"clause": clause_eo,
		"severity": "blocking",
	}
}
