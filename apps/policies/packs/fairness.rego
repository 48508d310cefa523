# Fairness: demographic parity and equalized odds differences within the model's thresholds.
# Applies to high-risk models and to every model with fairness thresholds set; thresholds not
# set default to 0.1. A threshold covers every sensitive column of the latest bias report on its
# own AND the intersection of them all (a model can be fair by sex and by age band, and unfair
# to older women). Each rule's result carries the worst measured value against its threshold.
package assay.fairness

import rego.v1

title := "Fairness"

default applies := false

applies if input.model.risk_tier == "high"

applies if count(input.model.fairness_thresholds) > 0

clause_dp := "Assay fairness policy F-1 (demographic parity difference, fairlearn)"

clause_eo := "Assay fairness policy F-2 (equalized odds difference, fairlearn)"

threshold(metric) := object.get(input.model.fairness_thresholds, metric, 0.1)

# What the thresholds are checked on: each sensitive column, and their intersection when reported.
judged contains {"attribute": column, "report": report} if {
	some column, report in input.evidence.bias.by_column
}

judged contains {"attribute": report.name, "report": report} if {
	report := input.evidence.bias.intersection
	is_object(report)
}

# object.get, not report[metric]: regopy 1.5.2 leaves a function's argument unbound when it indexes
# inside a comprehension, and would iterate over every key of the report.
measured_values(metric) := [v | some j in judged; v := object.get(j.report, metric, null); is_number(v)]

# The largest value over every attribute and the intersection (null without a bias report).
worst(metric) := max(measured_values(metric)) if count(measured_values(metric)) > 0

else := null

worst_attribute(metric) := [j.attribute | some j in judged; object.get(j.report, metric, null) == worst(metric)][0] if {
	worst(metric) != null
}

else := ""

rounded(value) := round(value * 10000) / 10000

detail(words, metric) := concat("", [
	words, " ", sprintf("%v", [rounded(worst(metric))]),
	comparison(metric), sprintf("%v", [threshold(metric)]),
	" (worst: ", worst_attribute(metric), ")",
]) if {
	worst(metric) != null
}

else := ""

comparison(metric) := " ≤ " if worst(metric) <= threshold(metric)

else := " > "

rules := [
	{"rule": "fairness.bias_report", "clause": "Assay fairness policy F-0 (a bias report exists)", "title": "A bias report exists", "applies": true},
	{
		"rule": "fairness.demographic_parity",
		"clause": clause_dp,
		"title": sprintf("Demographic parity difference at most %v", [threshold("demographic_parity_difference")]),
		"applies": true,
		"measured": worst("demographic_parity_difference"),
		"threshold": threshold("demographic_parity_difference"),
		"detail": detail("demographic parity difference", "demographic_parity_difference"),
	},
	{
		"rule": "fairness.equalized_odds",
		"clause": clause_eo,
		"title": sprintf("Equalized odds difference at most %v", [threshold("equalized_odds_difference")]),
		"applies": true,
		"measured": worst("equalized_odds_difference"),
		"threshold": threshold("equalized_odds_difference"),
		"detail": detail("equalized odds difference", "equalized_odds_difference"),
	},
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
	some j in judged
	value := j.report.demographic_parity_difference
	value > threshold("demographic_parity_difference")
	v := {
		"rule": "fairness.demographic_parity",
		"message": concat("", ["Assay fairness policy F-1: demographic parity difference over ", j.attribute, " is ", sprintf("%v", [rounded(value)]), ", above the threshold ", sprintf("%v", [threshold("demographic_parity_difference")])]),
		"clause": clause_dp,
		"severity": "blocking",
	}
}

violations contains v if {
	some j in judged
	value := j.report.equalized_odds_difference
	value > threshold("equalized_odds_difference")
	v := {
		"rule": "fairness.equalized_odds",
		"message": concat("", ["Assay fairness policy F-2: equalized odds difference over ", j.attribute, " is ", sprintf("%v", [rounded(value)]), ", above the threshold ", sprintf("%v", [threshold("equalized_odds_difference")])]),
		"clause": clause_eo,
		"severity": "blocking",
	}
}
