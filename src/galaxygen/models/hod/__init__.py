"""The HOD baseline: occupation models, fits on training boxes, populated prediction boxes.

Modules: `occupation` (seed3, central-satellite, zheng07; the HOD's table of models ``MODELS``),
`populate` (galaxy placement, NFW, prediction boxes), `matching` (galaxy → host halo), `fit`
(maximum likelihood with the number density imposed), `fit_pk` (χ² on the large-scale P(k)),
`uncertainty` (Hessians, covariances, parameters at their bounds), `task` (box files and
hod.json). See docs/hod.md.
"""
