# EU AI Act: AI systems placed on the EU market, by risk tier.
package assay.eu_ai_act

import rego.v1

title := "EU AI Act"

eu := {
	"EU", "EEA", "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
	"LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
}

default applies := false

applies if {
	some j in input.model.jurisdictions
	j in eu
}

default high := false

high if input.model.risk_tier == "high"

default unacceptable := false

unacceptable if input.model.risk_tier == "unacceptable"

subject := concat("", [input.model.name, " v", format_int(input.version.number, 10)])

rules := [
	{"rule": "eu_ai_act.prohibited_practice", "clause": "EU AI Act Art. 5", "title": "Unacceptable-risk systems are never released", "applies": true},
	{"rule": "eu_ai_act.high_risk_model_card", "clause": "EU AI Act Art. 11 and Annex IV", "title": "High risk: a complete model card (intended use, limitations, performance metrics)", "applies": high},
	{"rule": "eu_ai_act.high_risk_bias_report", "clause": "EU AI Act Art. 10(2)(f)", "title": "High risk: a bias report", "applies": high},
	{"rule": "eu_ai_act.high_risk_explainability", "clause": "EU AI Act Art. 13(1)", "title": "High risk: an explainability report", "applies": high},
	{"rule": "eu_ai_act.high_risk_human_oversight", "clause": "EU AI Act Art. 14", "title": "High risk: a human-oversight note", "applies": high},
	{"rule": "eu_ai_act.high_risk_compliance_approval", "clause": "EU AI Act Art. 17(1)", "title": "High risk: a compliance officer approves the release", "applies": high},
]

violations contains v if {
	unacceptable
	v := {
		"rule": "eu_ai_act.prohibited_practice",
		"message": "EU AI Act Art. 5: the model is classified as an unacceptable-risk (prohibited) practice and is never released",
		"clause": "EU AI Act Art. 5",
		"severity": "blocking",
	}
}

card_value(field) := v if {
	v := input.version.model_card[field]
	v != ""
	v != null
} else := input.model[field]

missing_card contains "intended use" if {
	high
	trim_space(card_value("intended_use")) == ""
}

missing_card contains "limitations" if {
	high
	trim_space(card_value("limitations")) == ""
}

missing_card contains "performance metrics" if {
	high
	count(input.version.metrics) == 0
	count(object.get(input.version.model_card, "metrics", {})) == 0
}

violations contains v if {
	count(missing_card) > 0
	v := {
		"rule": "eu_ai_act.high_risk_model_card",
		"message": concat("", ["EU AI Act Art. 11 and Annex IV: the high-risk model's technical documentation lacks ", concat(", ", sort(missing_card))]),
		"clause": "EU AI Act Art. 11 and Annex IV",
		"severity": "blocking",
	}
}

missing_evidence contains m if {
	high
	input.evidence.bias == null
	m := {"kind": "bias", "subject": subject, "reason": "EU AI Act Art. 10(2)(f): a high-risk system needs an examination of possible biases (a bias report)", "rule": "eu_ai_act.high_risk_bias_report"}
}

missing_evidence contains m if {
	high
	input.evidence.explainability == null
	m := {"kind": "explainability", "subject": subject, "reason": "EU AI Act Art. 13(1): a high-risk system must be transparent enough to interpret its output (an explainability report)", "rule": "eu_ai_act.high_risk_explainability"}
}

violations contains v if {
	high
	trim_space(input.model.human_oversight) == ""
	v := {
		"rule": "eu_ai_act.high_risk_human_oversight",
		"message": "EU AI Act Art. 14: a high-risk system needs documented human oversight (set the model's human-oversight note)",
		"clause": "EU AI Act Art. 14",
		"severity": "blocking",
	}
}

required_approvals contains a if {
	high
	a := {"role": "compliance_officer", "count": 1, "reason": "eu_ai_act.high_risk_compliance_approval: EU AI Act Art. 17(1) (quality management: conformity sign-off)"}
}
