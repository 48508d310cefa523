# PCI-DSS: models whose data includes payment cards must not learn from primary account numbers.
package assay.pci_dss

import rego.v1

title := "PCI-DSS"

default applies := false

applies if "payment_card" in input.model.data_categories

clause := "PCI DSS v4.0 Req. 3.2.1 (account data kept to a minimum) and 3.4 (PAN unreadable)"

rules := [{"rule": "pci_dss.no_pan", "clause": clause, "title": "No primary account numbers in training or evaluation data", "applies": true}]

missing_evidence contains m if {
	some d in input.datasets
	d.pii_scan == null
	m := {
		"kind": "pii_scan",
		"subject": concat(" ", ["dataset", d.name]),
		"reason": concat("", ["PCI DSS v4.0 Req. 3.2.1: the ", d.role, " dataset ", d.name, " has no finished PII scan to show it holds no card numbers"]),
		"rule": "pci_dss.no_pan",
	}
}

violations contains v if {
	some d in input.datasets
	columns := [f.column | some f in d.pii_scan.findings; f.unresolved; f.entity_type == "CREDIT_CARD"]
	count(columns) > 0
	v := {
		"rule": "pci_dss.no_pan",
		"message": concat("", ["PCI DSS v4.0 Req. 3.2.1: the ", d.role, " dataset ", d.name, " holds primary account numbers in ", concat(", ", columns)]),
		"clause": clause,
		"severity": "blocking",
	}
}
