"""Inference on ptdcore models: SVGD (:mod:`.svgd`, its functional core and sharding),
maximum likelihood with exact standard errors (:mod:`.mle`), the likelihood layer they
share (:mod:`.likelihood`) and their plots (:mod:`.plots`)."""
