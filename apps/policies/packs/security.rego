# Security: a model version is released only as a safe artifact format whose digest was verified.
package assay.security

import rego.v1

title := "Security"

# Every version, every environment.
applies := true

safe_formats := {"onnx", "skops", "xgboost", "lightgbm", "predictions_only"}

rules := [
	{"rule": "security.safe_format", "clause": "Assay security baseline SB-1 (safe serialization)", "title": "The artifact is in a format that loads without running code", "applies": true},
	{"rule": "security.verified_digest", "clause": "Assay security baseline SB-2 (artifact integrity)", "title": "The artifact's SHA-256 was verified", "applies": true},
]

violations contains v if {
	not input.version.format in safe_formats
	v := {
		"rule": "security.safe_format",
		"message": concat("", ["Assay security baseline SB-1: artifact format '", input.version.format, "' may execute code when loaded; use ONNX, skops, XGBoost JSON/UBJ or LightGBM text"]),
		"clause": "Assay security baseline SB-1 (safe serialization)",
		"severity": "blocking",
	}
}

violations contains v if {
	not digest_verified
	v := {
		"rule": "security.verified_digest",
		"message": concat("", ["Assay security baseline SB-2: the artifact's digest is not verified (version status '", input.version.status, "')"]),
		"clause": "Assay security baseline SB-2 (artifact integrity)",
		"severity": "blocking",
	}
}

digest_verified if {
	input.version.status == "ready"
	regex.match(`^[0-9a-f]{64}$`, input.version.sha256)
}
