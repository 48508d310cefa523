# placeholder
package assay.eu_ai_act

import rego.v1

title := "eu-ai-act"

applies := false

rules := []

violations := set()
