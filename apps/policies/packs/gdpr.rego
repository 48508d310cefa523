# GDPR: models that process personal data of people in the EU/EEA (or the UK, under the UK GDPR).
package assay.gdpr

import rego.v1

title := "GDPR"

jurisdictions := {
	"EU", "EEA", "UK", "GB", "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU",
	"IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
}

personal_categories := {"personal", "health", "biometric", "children", "financial"}

special_categories := {"health", "biometric", "children"}

# Entity types that identify a person directly (assay.pii/v1 entity types).
direct_identifiers := {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "IBAN_CODE", "CREDIT_CARD", "IP_ADDRESS"}

default applies := false

applies if {
	some j in input.model.jurisdictions
	j in jurisdictions
	some c in input.model.data_categories
	c in personal_categories
}

default automated := false

automated if input.model.automated_decisions == true

default high_risk_processing := false

high_risk_processing if input.model.risk_tier in {"high", "unacceptable"}

high_risk_processing if automated

high_risk_processing if {
	some c in input.model.data_categories
	c in special_categories
}

art22 := "GDPR Art. 22(3)"

art5 := "GDPR Art. 5(1)(c)"

art35 := "GDPR Art. 35(1)"

art30 := "GDPR Art. 30(1)(b)-(c)"

rules := [
	{"rule": "gdpr.art22_explainability", "clause": art22, "title": "Automated decisions with legal effect have an explainability report", "applies": automated},
	{"rule": "gdpr.art22_human_review", "clause": art22, "title": "Automated decisions with legal effect have a documented human-review path", "applies": automated},
	{"rule": "gdpr.art5_minimisation", "clause": art5, "title": "No direct identifiers among the training features unless justified", "applies": true},
	{"rule": "gdpr.art35_dpia", "clause": art35, "title": "High-risk processing has a DPIA reference", "applies": high_risk_processing},
	{"rule": "gdpr.art30_records", "clause": art30, "title": "The purpose and the data categories are recorded", "applies": true},
]

missing_evidence contains m if {
	automated
	input.evidence.explainability == null
	m := {
		"kind": "explainability",
		"subject": concat("", [input.model.name, " v", format_int(input.version.number, 10)]),
		"reason": "GDPR Art. 22(3): automated decisions with legal or similarly significant effect need an explainability report",
		"rule": "gdpr.art22_explainability",
	}
}

violations contains v if {
	automated
	trim_space(input.model.human_review_path) == ""
	v := {
		"rule": "gdpr.art22_human_review",
		"message": "GDPR Art. 22(3): the model makes automated decisions with legal or similarly significant effect but documents no way to obtain human review (set the model's human-review path)",
		"clause": art22,
		"severity": "blocking",
	}
}

# Feature columns of training datasets in which a PII scan found a direct identifier (unresolved).
identifier_features contains concat("", [d.name, ".", f.column, " (", f.entity_type, ")"]) if {
	some d in input.datasets
	d.role == "training"
	some f in d.pii_scan.findings
	f.unresolved
	f.column_role == "feature"
	f.entity_type in direct_identifiers
}

violations contains v if {
	count(identifier_features) > 0
	trim_space(input.model.minimisation_justification) == ""
	v := {
		"rule": "gdpr.art5_minimisation",
		"message": concat("", ["GDPR Art. 5(1)(c) data minimisation: direct identifiers among the training features: ", concat(", ", sort(identifier_features)), "; drop them or record a justification"]),
		"clause": art5,
		"severity": "blocking",
	}
}

violations contains v if {
	count(identifier_features) > 0
	trim_space(input.model.minimisation_justification) != ""
	v := {
		"rule": "gdpr.art5_minimisation",
		"message": concat("", ["GDPR Art. 5(1)(c) data minimisation: direct identifiers among the training features (", concat(", ", sort(identifier_features)), "), justified: ", input.model.minimisation_justification]),
		"clause": art5,
		"severity": "warning",
	}
}

violations contains v if {
	high_risk_processing
	trim_space(input.model.dpia_reference) == ""
	v := {
		"rule": "gdpr.art35_dpia",
		"message": "GDPR Art. 35(1): processing likely to result in a high risk (high risk tier, automated decisions or special categories of data) needs a data protection impact assessment; record its reference on the model",
		"clause": art35,
		"severity": "blocking",
	}
}

violations contains v if {
	trim_space(input.model.intended_use) == ""
	v := {
		"rule": "gdpr.art30_records",
		"message": "GDPR Art. 30(1)(b): the purpose of the processing is not recorded (set the model's intended use)",
		"clause": art30,
		"severity": "blocking",
	}
}

violations contains v if {
	count(input.model.data_categories) == 0
	v := {
		"rule": "gdpr.art30_records",
		"message": "GDPR Art. 30(1)(c): the categories of personal data are not recorded (set the model's data categories)",
		"clause": art30,
		"severity": "blocking",
	}
}
