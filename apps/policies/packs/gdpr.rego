# placeholder
package assay.gdpr

import rego.v1

title := "gdpr"

applies := false

rules := []

violations := set()
