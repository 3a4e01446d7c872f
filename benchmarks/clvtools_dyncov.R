# CLVTools' Pareto/NBD with time-varying (dynamic) covariates on its own apparel data: the
# reference numbers (fits, per-customer log-likelihoods, predictions) that clvlab's time-varying
# Pareto/NBD is checked and timed against.
#
# Two modes; both print one JSON object on stdout (progress goes to stderr):
#
#   Rscript benchmarks/clvtools_dyncov.R [--data DIR] [--fits NAMES] [--ll-csv FILE] > results.json
#
#     Fits pnbd() on CLVTools' apparel data as its vignette does: weeks, calibration to 2006-12-31
#     (104 weeks), High.Season, Gender and Channel as dynamic covariates in both processes.
#     NAMES (comma-separated, default all four): nm_vignette, nm_default (CLVTools' default
#     optimizer for this model, Nelder-Mead, from the vignette's start values and from CLVTools'
#     defaults r=0.5 alpha=15 s=0.5 beta=10 and 0.1 for every covariate), lbfgsb_vignette,
#     lbfgsb_default (the same with optimx.args = list(method = "L-BFGS-B")).
#     JSON keys: "setup" (versions, threads, data), "fits" (per fit: ll, estimates and
#     standard errors with CLVTools' names, convergence, kkt1/kkt2, fevals, niter, cpu_seconds =
#     user+system of this process (all threads) around the pnbd() call, wall_seconds, warnings),
#     "ll_check" (this file's per-customer LL, built from the data as --ll-at builds it, at the
#     reference fit's estimates against logLik(fit)), "ll_eval_seconds" (one call of CLVTools'
#     C++ LL, the summed form pnbd() optimizes and the per-customer form), and "predictions"
#     (PAlive, CET, DECT, with x, t_x, T_cal, of customers 1-10: "holdout" = predict(fit) to the holdout end
#     2010-12-20 with actuals; "future" = predict(fit, newdata, prediction.end = "2012-10-14")
#     where newdata holds every transaction (estimation end = last transaction, 2010-12-20) and
#     the covariates of apparel_dyncov.csv.gz followed by apparel_dyncov_future.csv.gz).
#     The reference fit is the L-BFGS-B fit with the higher LL (else the best fit run); with
#     --ll-csv its per-customer LL is written there (Id, LL, x, t_x, T_cal, d_omega).
#     Each fit runs once (a fit takes minutes): pnbd() includes building the covariate walks
#     (about 1-2 s), the optimization and optimx's KKT check / numDeriv Hessian. Measured
#     (CLVTools 0.12.1, R 4.2.2, optimx 2022.4.30, one thread, two-core machine at load ~1):
#     nm_vignette 569 s CPU, ll -5758.2085, convcode 0 but kkt1 FALSE (4413 fevals: stopped
#     short); lbfgsb_vignette 357 s CPU, ll -5752.6266, kkt1 TRUE, kkt2 FALSE (life.High.Season
#     -4.30 on its way to -inf; clvlab's optimum is -5752.6232 with it at -23.3).
#
#   Rscript benchmarks/clvtools_dyncov.R --ll-at PARAMS.json OUT.csv [--data DIR]
#
#     CLVTools' per-customer log-likelihood (CLVTools:::pnbd_dyncov_LL_ind, the function whose
#     weighted sum pnbd() maximizes) at given parameters on the same data (calibration to
#     2006-12-31). PARAMS.json is one flat object with CLVTools' names, e.g.
#       {"r": 1.0, "alpha": 40, "s": 0.5, "beta": 10, "life.High.Season": 0.1,
#        "life.Gender": 0.2, "life.Channel": 0.3, "trans.High.Season": 0.1,
#        "trans.Gender": 0.2, "trans.Channel": 0.3}
#     (r, alpha, s, beta natural scale; a missing covariate name is an error). OUT.csv gets Id, LL,
#     x, t_x, T_cal, d_omega per customer (x repeat purchases, t_x and T_cal in weeks since the
#     first purchase); stdout gets {"params", "n_customers", "total_ll", "out"}.
#
# How CLVTools cuts the data (CLVTools 0.12.1, R/pnbd_dyncov_createwalks.R; read off its cbs and
# walk tables on this data):
# same-day transactions are merged; a covariate row dated Cov.Date holds on the closed interval
# [Cov.Date, Cov.Date + 1 week - 1 day] (weeks start on Sunday, lubridate's week_start 7); the
# first purchase (time 0) lies in some week and d_omega = time from it to the end of that week
# (ceiling_date with change_on_boundary, so 1 when it falls on a Sunday: here every customer
# starts on Sunday 2005-01-02, so d_omega = 1 and customer weeks are calendar weeks); the
# purchase-rate factor exp(g'x(t_j)) of a repeat purchase uses the covariate of the week
# containing its date; the calibration end 2006-12-31 is a Sunday, so every customer's
# last-transaction-to-T walk includes the week starting 2006-12-31 with zero length, and a
# purchase on 2006-12-31 (customer 262) counts in calibration with t_x = T = 104 and that
# week's (the 105th's) covariate.
#
# Install (Debian bookworm, as root; CLVTools into a private library, never this repo):
#   apt-get install -y --no-install-recommends r-base-core r-cran-data.table r-cran-digest \
#     r-cran-formula r-cran-ggplot2 r-cran-lubridate r-cran-numderiv r-cran-matrix r-cran-mass \
#     r-cran-optimx r-cran-rcpp r-cran-rcpparmadillo r-cran-rcppgsl r-cran-testthat \
#     libgsl-dev gfortran liblapack-dev libblas-dev        # r-cran-jsonlite comes with testthat
#   git clone https://github.com/bachmannpatrick/CLVTools /tmp/clvtools-src   # v0.12.1 measured
#   mkdir -p /opt/rlib
#   R CMD INSTALL --no-docs --no-multiarch --library=/opt/rlib /tmp/clvtools-src
# and run from the repository root with R_LIBS=/opt/rlib OMP_NUM_THREADS=1 (OpenMP threads spin
# on a loaded machine; this script sets OMP_NUM_THREADS=1 itself when it is unset).

# lubridate asks timedatectl for the zone when none is set, which warns in containers
if (Sys.getenv("TZ") == "") Sys.setenv(TZ = "UTC")
if (Sys.getenv("OMP_NUM_THREADS") == "") Sys.setenv(OMP_NUM_THREADS = "1")

suppressPackageStartupMessages({
  library(CLVTools)
  library(data.table)
  library(jsonlite)
})

COVARIATES <- c("High.Season", "Gender", "Channel")
ESTIMATION_END <- "2006-12-31"
FUTURE_END <- "2012-10-14"
N_PREDICTED <- 10L
VIGNETTE_START <- list(model = c(r = 1, alpha = 2, s = 1, beta = 2),
                       cov = c(High.Season = 0.5, Gender = 0.6, Channel = 0.4))
FIT_NAMES <- c("nm_vignette", "nm_default", "lbfgsb_vignette", "lbfgsb_default")

say <- function(...) message(format(Sys.time(), "%H:%M:%S "), ...)

# . arguments ------------------------------------------------------------------------------------
parse.args <- function(args) {
  script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])
  opts <- list(data = normalizePath(file.path(dirname(script), "..", "..", "shared", "data", "apparel"),
                                    mustWork = FALSE),
               fits = FIT_NAMES, ll.csv = NULL, ll.at = NULL)
  i <- 1
  while (i <= length(args)) {
    a <- args[[i]]
    if (a == "--ll-at") {
      if (i + 2 > length(args)) stop("usage: --ll-at PARAMS.json OUT.csv")
      opts$ll.at <- c(args[[i + 1]], args[[i + 2]]); i <- i + 3; next
    }
    if (!(a %in% c("--data", "--fits", "--ll-csv")) || i + 1 > length(args))
      stop("unknown or incomplete argument ", a, " (see this file's header)")
    value <- args[[i + 1]]
    if (a == "--data") opts$data <- value
    if (a == "--ll-csv") opts$ll.csv <- value
    if (a == "--fits") {
      opts$fits <- strsplit(value, ",", fixed = TRUE)[[1]]
      unknown <- setdiff(opts$fits, FIT_NAMES)
      if (length(unknown)) stop("unknown fit ", unknown[1], "; known: ", paste(FIT_NAMES, collapse = ", "))
    }
    i <- i + 2
  }
  opts
}

# . data -------------------------------------------------------------------------------------------
read.covariates <- function(path) {
  cov <- as.data.table(read.csv(path, colClasses = c(Id = "character", Cov.Date = "character")))
  cov[, Cov.Date := as.Date(Cov.Date)]
  cov
}

read.apparel <- function(dir) {
  transactions <- as.data.table(read.csv(file.path(dir, "apparel_transactions.csv"),
                                         colClasses = c(Id = "character", Date = "character",
                                                        Price = "numeric")))
  transactions[, Date := as.Date(Date)]
  list(transactions = transactions,
       cov = read.covariates(file.path(dir, "apparel_dyncov.csv.gz")),
       cov.future = read.covariates(file.path(dir, "apparel_dyncov_future.csv.gz")))
}

make.clvdata <- function(transactions, cov, estimation.split) {
  clv <- clvdata(transactions, date.format = "ymd", time.unit = "week",
                 estimation.split = estimation.split, name.id = "Id", name.date = "Date",
                 name.price = "Price")
  SetDynamicCovariates(clv.data = clv, data.cov.life = cov, data.cov.trans = cov,
                       names.cov.life = COVARIATES, names.cov.trans = COVARIATES,
                       name.id = "Id", name.date = "Cov.Date")
}

# . CLVTools' per-customer LL outside pnbd() ---------------------------------------------------------
# The fitted-object skeleton pnbd() builds before optimizing (its cbs with d_omega) plus the
# covariate walks pnbd() adds in clv.model.put.estimation.input; the LL arguments are those of
# pnbd_dyncov_getLLdata(), the function pnbd() uses to store fit@LL.data.
ll.setup <- function(clv.dyn) {
  skeleton <- CLVTools:::clv.pnbd.dynamic.cov(cl = quote(pnbd()), clv.data = clv.dyn)
  walks <- CLVTools:::pnbd_dyncov_createwalks(clv.data = clv.dyn)
  skeleton@data.walks.life.aux <- walks[["data.walks.life.aux"]]
  skeleton@data.walks.life.real <- walks[["data.walks.life.real"]]
  skeleton@data.walks.trans.aux <- walks[["data.walks.trans.aux"]]
  skeleton@data.walks.trans.real <- walks[["data.walks.trans.real"]]
  list(skeleton = skeleton, args = CLVTools:::pnbd_dyncov_getLLcallargs_ind(skeleton),
       sum.args = CLVTools:::pnbd_dyncov_getLLcallargs_LLsum(skeleton))
}

# CLVTools' parameter vector: log model parameters, then life, then trans coefficients in the
# order of the covariate data (names.cov.data.*), which the C++ LL reads positionally
ll.params <- function(estimates, clv.dyn) {
  names.life <- paste0("life.", clv.dyn@names.cov.data.life)
  names.trans <- paste0("trans.", clv.dyn@names.cov.data.trans)
  needed <- c("r", "alpha", "s", "beta", names.life, names.trans)
  missing <- setdiff(needed, names(estimates))
  if (length(missing)) stop("parameter ", missing[1], " is missing; needed: ", paste(needed, collapse = ", "))
  c(log.r = log(estimates[["r"]]), log.alpha = log(estimates[["alpha"]]),
    log.s = log(estimates[["s"]]), log.beta = log(estimates[["beta"]]),
    unlist(estimates[c(names.life, names.trans)]))
}

ll.per.customer <- function(setup, estimates, clv.dyn) {
  args <- setup$args
  args$params <- ll.params(estimates, clv.dyn)
  ll <- do.call(CLVTools:::pnbd_dyncov_LL_ind, args)[, "LL"]
  cbs <- setup$skeleton@cbs
  data.table(Id = cbs$Id, LL = ll, x = cbs$x, t_x = cbs$t.x, T_cal = cbs$T.cal, d_omega = cbs$d_omega)
}

# . fits -------------------------------------------------------------------------------------------
fit.case <- function(name, clv.dyn) {
  from.vignette <- grepl("vignette$", name)
  call.args <- list(clv.data = clv.dyn, verbose = FALSE)
  if (from.vignette) {
    call.args$start.params.model <- VIGNETTE_START$model
    call.args$start.params.life <- VIGNETTE_START$cov
    call.args$start.params.trans <- VIGNETTE_START$cov
  }
  if (grepl("^lbfgsb", name)) call.args$optimx.args <- list(method = "L-BFGS-B")
  caught <- character(0)
  gc()
  cpu0 <- proc.time()
  fitted <- withCallingHandlers(do.call(pnbd, call.args), warning = function(w) {
    caught <<- c(caught, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  cpu1 <- proc.time()
  used <- cpu1 - cpu0
  estimates <- coef(fitted)
  errors <- tryCatch(sqrt(diag(vcov(fitted))), error = function(e) setNames(rep(NA_real_, length(estimates)), names(estimates)))
  # CLVTools may chain optimizers; the last row of optimx's output is the fit
  row <- tail(fitted@optimx.estimation.output, 1)
  list(optimizer = if (grepl("^lbfgsb", name)) "L-BFGS-B" else "Nelder-Mead (CLVTools' default)",
       start = if (from.vignette) c(as.list(VIGNETTE_START$model),
                                    setNames(as.list(VIGNETTE_START$cov), paste0("life.", COVARIATES)),
                                    setNames(as.list(VIGNETTE_START$cov), paste0("trans.", COVARIATES)))
               else "CLVTools defaults: r=0.5, alpha=15, s=0.5, beta=10, every covariate 0.1",
       ll = as.numeric(logLik(fitted)),
       estimates = as.list(estimates), se = as.list(errors[names(estimates)]),
       convergence = row$convcode, kkt1 = row$kkt1, kkt2 = row$kkt2,
       fevals = row$fevals, niter = row$niter,
       optimx_value = row$value,
       cpu_seconds = unname(used[["user.self"]] + used[["sys.self"]] +
                              sum(used[c("user.child", "sys.child")], na.rm = TRUE)),
       wall_seconds = unname(used[["elapsed"]]),
       warnings = unique(caught),
       fitted = fitted)
}

time.ll.eval <- function(setup, params, repetitions = 5L) {
  one <- function(fn, args) {
    args$params <- params
    times <- vapply(seq_len(repetitions), function(k) {
      t0 <- proc.time(); do.call(fn, args); t1 <- proc.time() - t0
      t1[["user.self"]] + t1[["sys.self"]]
    }, numeric(1))
    min(times)
  }
  list(negsum_compressed_cpu_seconds = one(CLVTools:::pnbd_dyncov_LL_negsum, setup$sum.args),
       n_compressed_customers = length(setup$sum.args$vN),
       ind_cpu_seconds = one(CLVTools:::pnbd_dyncov_LL_ind, setup$args),
       repetitions = repetitions, note = "least CPU seconds of one call over the repetitions")
}

# . predictions ----------------------------------------------------------------------------------
predictions <- function(fitted, raw) {
  keep <- c("Id", "period.first", "period.last", "period.length", "PAlive", "CET", "DECT",
            "actual.x", "actual.total.spending")
  # the customers with the numerically smallest Ids (CLVTools sorts Ids as text: 1, 10, 100, ...)
  ids <- fitted@cbs$Id
  first.ids <- head(ids[order(as.numeric(ids))], N_PREDICTED)
  pick <- function(pred, cbs) {
    pred <- as.data.table(pred)[Id %in% first.ids]
    pred <- pred[, intersect(keep, names(pred)), with = FALSE]
    pred[cbs, `:=`(x = i.x, t_x = i.t.x, T_cal = i.T.cal), on = "Id"]
    for (col in c("period.first", "period.last")) if (col %in% names(pred)) pred[[col]] <- as.character(pred[[col]])
    pred[order(as.numeric(Id))]
  }
  say("predicting the holdout period")
  holdout <- pick(predict(fitted, verbose = FALSE), fitted@cbs)
  say("predicting to ", FUTURE_END, " with newdata")
  cov.all <- rbind(raw$cov, raw$cov.future)
  newdata <- make.clvdata(raw$transactions, cov.all, estimation.split = NULL)
  future <- pick(predict(fitted, newdata = newdata, prediction.end = FUTURE_END, verbose = FALSE),
                 CLVTools:::pnbd_dyncov_cbs(newdata))
  list(continuous_discount_factor = 0.1,
       holdout = list(description = "predict(fit): estimation end 2006-12-31, to the holdout end 2010-12-20",
                      rows = holdout),
       future = list(description = paste0("predict(fit, newdata, prediction.end = '", FUTURE_END,
                                          "'): newdata = every transaction (estimation.split = NULL, so estimation end = ",
                                          as.character(newdata@clv.time@timepoint.estimation.end),
                                          ") with covariates apparel_dyncov + apparel_dyncov_future"),
                     rows = future))
}

# . modes --------------------------------------------------------------------------------------
versions <- function() {
  list(CLVTools = as.character(packageVersion("CLVTools")), R = R.version.string,
       optimx = as.character(packageVersion("optimx")),
       OMP_NUM_THREADS = Sys.getenv("OMP_NUM_THREADS"), time_unit = "week",
       estimation_split = ESTIMATION_END, covariates = COVARIATES)
}

run.ll.at <- function(opts, raw) {
  params <- fromJSON(opts$ll.at[1], simplifyVector = TRUE)
  clv.dyn <- make.clvdata(raw$transactions, raw$cov, ESTIMATION_END)
  setup <- ll.setup(clv.dyn)
  per.customer <- ll.per.customer(setup, params, clv.dyn)
  fwrite(per.customer, opts$ll.at[2])
  list(params = params, n_customers = nrow(per.customer), total_ll = sum(per.customer$LL),
       out = opts$ll.at[2], setup = versions())
}

run.fits <- function(opts, raw) {
  clv.dyn <- make.clvdata(raw$transactions, raw$cov, ESTIMATION_END)
  setup <- ll.setup(clv.dyn)
  fits <- list()
  for (name in opts$fits) {
    say("fitting ", name)
    fits[[name]] <- fit.case(name, clv.dyn)
    say(name, ": ll=", format(fits[[name]]$ll, digits = 10), " cpu=", round(fits[[name]]$cpu_seconds, 1),
        " s wall=", round(fits[[name]]$wall_seconds, 1), " s conv=", fits[[name]]$convergence)
  }
  lls <- vapply(fits, function(f) f$ll, numeric(1))
  lbfgsb <- grep("^lbfgsb", names(fits), value = TRUE)
  reference <- if (length(lbfgsb)) lbfgsb[which.max(lls[lbfgsb])] else names(fits)[which.max(lls)]
  fitted <- fits[[reference]]$fitted
  per.customer <- ll.per.customer(setup, as.list(coef(fitted)), clv.dyn)
  if (!is.null(opts$ll.csv)) fwrite(per.customer, opts$ll.csv)
  stored <- fitted@LL.data[, c("Id", "LL")]
  matched <- merge(per.customer[, c("Id", "LL")], stored, by = "Id", suffixes = c("", ".fit"))
  ll.check <- list(fit = reference, total_ll_rebuilt = sum(per.customer$LL),
                   logLik_fit = as.numeric(logLik(fitted)),
                   difference = sum(per.customer$LL) - as.numeric(logLik(fitted)),
                   max_abs_difference_vs_fit_LL_data = max(abs(matched$LL - matched$LL.fit)))
  say("timing single LL evaluations")
  ll.time <- time.ll.eval(setup, ll.params(as.list(coef(fitted)), clv.dyn))
  preds <- tryCatch(predictions(fitted, raw), error = function(e) list(error = conditionMessage(e)))
  for (name in names(fits)) fits[[name]]$fitted <- NULL
  list(setup = versions(), fits = fits, reference_fit = reference,
       ll_check = ll.check, ll_eval_seconds = ll.time, predictions = preds)
}

main <- function() {
  opts <- parse.args(commandArgs(trailingOnly = TRUE))
  raw <- read.apparel(opts$data)
  result <- if (!is.null(opts$ll.at)) run.ll.at(opts, raw) else run.fits(opts, raw)
  cat(toJSON(result, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null", null = "null"), "\n")
}

# run unless sourced (sourcing gives the functions to a test harness)
if (sys.nframe() == 0L) main()
