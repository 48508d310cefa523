# HIPAA: models trained or evaluated on health data (protected health information).
package assay.hipaa

import rego.v1

title := "HIPAA"

default applies := false

applies if "health" in input.model.data_categories

phi_clause := "HIPAA 45 CFR 164.514(b) (de-identification) and 164.502(b) (minimum necessary)"

access_clause := "HIPAA 45 CFR 164.312(a)(1) (access control)"

audit_clause := "HIPAA 45 CFR 164.312(b) (audit controls)"

rules := [
	{"rule": "hipaa.phi_scan", "clause": phi_clause, "title": "Training and evaluation data were scanned for PHI and have no unresolved findings (or are scrubbed copies)", "applies": true},
	{"rule": "hipaa.access_restricted", "clause": access_clause, "title": "Only named teams can read the model", "applies": true},
	{"rule": "hipaa.audit_trail", "clause": audit_clause, "title": "The audit trail is enabled", "applies": true},
]

# A scrubbed copy (registered by a PII scan's scrub) stands in for its source.
scrubbed(d) if d.scrubbed_from != null

missing_evidence contains m if {
	count(input.datasets) == 0
	m := {
		"kind": "dataset",
		"subject": concat("", [input.model.name, " v", format_int(input.version.number, 10)]),
		"reason": "HIPAA 45 CFR 164.514(b): the version records no training or evaluation dataset, so no PHI scan can vouch for it",
		"rule": "hipaa.phi_scan",
	}
}

missing_evidence contains m if {
	some d in input.datasets
	not scrubbed(d)
	d.pii_scan == null
	m := {
		"kind": "pii_scan",
		"subject": concat(" ", ["dataset", d.name]),
		"reason": concat("", ["HIPAA 45 CFR 164.514(b): the ", d.role, " dataset ", d.name, " has no finished PII/PHI scan"]),
		"rule": "hipaa.phi_scan",
	}
}

violations contains v if {
	some d in input.datasets
	not scrubbed(d)
	d.pii_scan.review_state.unresolved_count > 0
	v := {
		"rule": "hipaa.phi_scan",
		"message": concat("", ["HIPAA 45 CFR 164.514(b): the ", d.role, " dataset ", d.name, " has ", format_int(d.pii_scan.review_state.unresolved_count, 10), " unresolved PHI finding(s) (", concat(", ", d.pii_scan.review_state.unresolved), "); scrub it or review the findings"]),
		"clause": phi_clause,
		"severity": "blocking",
	}
}

violations contains v if {
	input.access.broad
	grants := [concat(" as ", [g.subject, g.role]) | some g in input.access.global_grants]
	v := {
		"rule": "hipaa.access_restricted",
		"message": concat("", ["HIPAA 45 CFR 164.312(a)(1): access to a model trained on PHI must be limited to named teams, but global grants let others read it: ", concat(", ", grants)]),
		"clause": access_clause,
		"severity": "blocking",
	}
}

violations contains v if {
	not input.audit.enabled
	v := {
		"rule": "hipaa.audit_trail",
		"message": "HIPAA 45 CFR 164.312(b): the audit trail is not enabled (its append-only triggers are missing)",
		"clause": audit_clause,
		"severity": "blocking",
	}
}
