# SOX: models used in financial reporting; production changes are referenced and segregated.
package assay.sox

import rego.v1

title := "SOX"

default applies := false

applies if "financial" in input.model.data_categories

default production := false

production if input.environment.production == true

change_clause := "SOX Sec. 404 ITGC (change management)"

sod_clause := "SOX Sec. 404 ITGC (segregation of duties)"

rules := [
	{"rule": "sox.change_reference", "clause": change_clause, "title": "A production release carries a change reference", "applies": production_release},
	{"rule": "sox.segregation_of_duties", "clause": sod_clause, "title": "Requester, version author and approvers are distinct people", "applies": input.release != null},
]

# Judged on a release request: before there is one (a gate read, a dry-run) nothing carries a reference yet,
# and the gate answers that a release is required.
default production_release := false

production_release if {
	production
	input.release != null
}

violations contains v if {
	production_release
	not has_change_reference
	v := {
		"rule": "sox.change_reference",
		"message": "SOX Sec. 404 ITGC change management: a production release must carry a change reference (ticket) from the change process",
		"clause": change_clause,
		"severity": "blocking",
	}
}

has_change_reference if trim_space(input.release.change_reference) != ""

approvers := [a.person | some a in input.release.approvals; a.decision == "approve"]

violations contains v if {
	input.release.requested_by != null
	input.release.requested_by == input.version.author
	v := sod("the requester is the version's author")
}

violations contains v if {
	some p in approvers
	p == input.release.requested_by
	v := sod("the requester approved their own release")
}

violations contains v if {
	some p in approvers
	input.version.author != null
	p == input.version.author
	v := sod("the version's author approved it")
}

violations contains v if {
	count(approvers) != count({p | some p in approvers})
	v := sod("one person approved more than once")
}

sod(why) := {
	"rule": "sox.segregation_of_duties",
	# concat, not sprintf: rego-cpp's sprintf quotes a string that arrived as a function argument
	"message": concat("", ["SOX Sec. 404 ITGC segregation of duties: ", why, "; requester, author and approvers must be distinct people"]),
	"clause": sod_clause,
	"severity": "blocking",
}
