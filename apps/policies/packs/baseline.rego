# Baseline: what every release needs whatever the model. A production release is reviewed by one
# reviewer (a person other than its requester and author, which the releases service enforces).
package assay.baseline

import rego.v1

title := "Baseline"

applies := true

default production := false

production if input.environment.production == true

rules := [{
	"rule": "baseline.production_review",
	"clause": "Assay baseline B-1 (production change review)",
	"title": "A production release is approved by a reviewer",
	"applies": production,
}]

required_approvals contains a if {
	production
	a := {"role": "reviewer", "count": 1, "reason": "baseline.production_review: Assay baseline B-1 (production change review)"}
}

violations := set()
