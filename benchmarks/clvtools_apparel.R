# Time CLVTools' fits on its apparel data, so bench_fit.py can set clvlab against the R peer
# in the same run on the same (shared, loaded) machine.
#
#   Rscript benchmarks/clvtools_apparel.R ../shared/data/apparel [repetitions]
#
# One line per case on stdout, key=value after the library and case names, e.g.
#   clvtools pnbd_static cpu=0.612 wall=0.640 ll=-5821.0627 r=... se.r=... convergence=0
# cpu is the least user+system time of this process (all its threads) over the n repetitions
# (REPETITIONS, or at least 3 once a case has taken a minute), wall the least elapsed time,
# each apart; only the fit call is timed (CLVTools builds its
# per-customer summary inside it; clvlab's timed fit starts from the RFM table). A first,
# untimed fit of each case pays one-time costs (method dispatch, lazy loading).
# CLVTools runs OpenMP threads (through Armadillo): on a loaded two-core machine the
# vignette-start covariate fit took 8-18 s with OpenMP's default against under 1 s with
# OMP_NUM_THREADS=1, which bench_fit.py sets unless told otherwise (--clvtools-threads).
#
# Install (Debian bookworm, as root; CLVTools goes into a private library, never this repo):
#   apt-get install -y --no-install-recommends r-base-core r-cran-data.table r-cran-digest \
#     r-cran-formula r-cran-ggplot2 r-cran-lubridate r-cran-numderiv r-cran-matrix r-cran-mass \
#     r-cran-optimx r-cran-rcpp r-cran-rcpparmadillo r-cran-rcppgsl r-cran-testthat \
#     libgsl-dev gfortran liblapack-dev libblas-dev
#   git clone https://github.com/bachmannpatrick/CLVTools /tmp/clvtools-src   # v0.12.1 measured
#   mkdir -p /opt/rlib
#   R CMD INSTALL --no-docs --no-multiarch --library=/opt/rlib /tmp/clvtools-src
# and run with R_LIBS=/opt/rlib (bench_fit.py passes its --r-library, default /opt/rlib).

# lubridate asks timedatectl for the zone when none is set, which warns in containers
if (Sys.getenv("TZ") == "") Sys.setenv(TZ = "UTC")

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 1) stop("usage: Rscript clvtools_apparel.R APPAREL_DIR [REPETITIONS]")
apparel.dir <- args[[1]]
repetitions <- if (length(args) >= 2) as.integer(args[[2]]) else 10L

suppressPackageStartupMessages(library(CLVTools))

transactions <- read.csv(file.path(apparel.dir, "apparel_transactions.csv"),
                         colClasses = c(Id = "character", Date = "character", Price = "numeric"))
covariates <- read.csv(file.path(apparel.dir, "apparel_static_covariates.csv"),
                       colClasses = c(Id = "character"))

clv.apparel <- clvdata(transactions, date.format = "ymd", time.unit = "week",
                       estimation.split = 104, name.id = "Id", name.date = "Date",
                       name.price = "Price")
clv.static <- SetStaticCovariates(clv.data = clv.apparel,
                                  data.cov.life = covariates, data.cov.trans = covariates,
                                  names.cov.life = c("Gender", "Channel"),
                                  names.cov.trans = c("Gender", "Channel"),
                                  name.id = "Id")

# the vignette's start values; "_default" cases leave CLVTools' own (1 for every parameter)
vignette.model <- c(r = 1, alpha = 2, s = 1, beta = 2)
vignette.cov <- c(Gender = 0.6, Channel = 0.4)
cases <- list(
  pnbd = function() pnbd(clv.apparel, start.params.model = vignette.model, verbose = FALSE),
  pnbd_default = function() pnbd(clv.apparel, verbose = FALSE),
  pnbd_static = function() pnbd(clv.static, start.params.model = vignette.model,
                                start.params.life = vignette.cov,
                                start.params.trans = vignette.cov, verbose = FALSE),
  pnbd_static_default = function() pnbd(clv.static, verbose = FALSE),
  bgnbd_static = function() bgnbd(clv.static, verbose = FALSE)
)

# a fit's warnings are counted and the first one kept, so the line stays one line
fit.quietly <- function(fit) {
  caught <- character(0)
  fitted <- withCallingHandlers(fit(), warning = function(w) {
    caught <<- c(caught, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  list(fitted = fitted, warnings = caught)
}

describe <- function(fitted) {
  estimates <- coef(fitted)
  errors <- tryCatch(sqrt(diag(vcov(fitted))), error = function(e) rep(NA_real_, length(estimates)))
  # CLVTools may chain optimizers (BG/NBD: Nelder-Mead, then BFGS); the last one's row is the fit
  optimx.output <- fitted@optimx.estimation.output
  optimx.row <- tail(optimx.output, 1)
  fields <- c(sprintf("ll=%.4f", as.numeric(logLik(fitted))),
              sprintf("%s=%.6g", names(estimates), estimates),
              sprintf("se.%s=%.6g", names(estimates), errors),
              sprintf("convergence=%d", as.integer(optimx.row$convcode)),
              sprintf("kkt1=%s kkt2=%s", optimx.row$kkt1, optimx.row$kkt2),
              sprintf("method=%s fevals=%d", paste(rownames(optimx.output), collapse = "+"),
                      as.integer(sum(optimx.output$fevals))))
  paste(fields, collapse = " ")
}

cat(sprintf("clvtools setup version=%s R=%s repetitions=%d data.table.threads=%d\n",
            as.character(packageVersion("CLVTools")), getRversion(), repetitions,
            data.table::getDTthreads()))
for (case in names(cases)) {
  first <- fit.quietly(cases[[case]])
  cpu <- wall <- Inf
  spent.total <- 0
  n <- 0L
  # the vignette-start covariate fit takes seconds, not tenths: past a minute, three tries do
  while (n < repetitions && !(n >= 3L && spent.total > 60)) {
    n <- n + 1L
    started <- proc.time()
    suppressWarnings(cases[[case]]())
    spent <- proc.time() - started
    cpu <- min(cpu, spent[["user.self"]] + spent[["sys.self"]])
    wall <- min(wall, spent[["elapsed"]])
    spent.total <- spent.total + spent[["elapsed"]]
  }
  warned <- if (length(first$warnings)) {
    sprintf(" warnings=%d first.warning=%s", length(first$warnings),
            gsub("[[:space:]]+", "_", first$warnings[[1]]))
  } else ""
  cat(sprintf("clvtools %s cpu=%.3f wall=%.3f n=%d %s%s\n", case, cpu, wall, n,
              describe(first$fitted), warned))
  flush(stdout())
}
