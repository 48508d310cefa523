# placeholder
package assay.hipaa

import rego.v1

title := "hipaa"

applies := false

rules := []

violations := set()
