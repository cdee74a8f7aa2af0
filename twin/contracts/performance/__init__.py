"""Performance (service-level) contract: the DSO allocates capacity, comfort and EV range are
guaranteed (issue #4; E.DSO technology paper, Alliander case study).

A household that signs accepts that the DSO allocates its grid capacity interval by interval,
as a **capacity band** (an upper bound on its net import, kW), in exchange for a tariff discount
and guaranteed service levels: its indoor temperature never more than ``comfort_band_k`` below
its setpoint, its EV charged by ``ev_deadline_h`` for at least ``ev_range_km``. Households that
did not sign keep a firm connection (:class:`~twin.contracts.firm.FirmContract` behaviour).

Each re-plan (``replan_every_h``, first at the start, then at ``replan_at_h`` o'clock):

1. forecasts come from the :mod:`twin.forecast` component (the DSO never reads the simulation's
   inputs directly): weather, base load and PV of every household, the feeder's other loads,
   the firm behaviour of households that did not sign;
2. the DSO allocates (:mod:`twin.optim.allocation`) over a rolling horizon of ``horizon_h`` in
   periods of ``resolution_h`` (devices hold their power over a period; the feeder rows use
   each period's worst 15-minute step, so the plan holds at 15-minute resolution):

   * ``information: central`` — one LP with the device models of every signed household
     (heat pump in a 1R1C building, EV, battery) and the feeder's limits (transformer, and the
     cables and voltages that could bind, from the linear feeder model);
   * ``information: envelope`` — each HEMS sends only a flexibility envelope (min/max power
     and cumulative-energy bounds per period, :mod:`twin.optim.envelope`); the DSO's LP sees
     envelopes only and returns each household's allocation; each HEMS then plans its own
     devices inside its band. A HEMS that cannot follow its allocation (the envelope format
     cannot say which device may use which energy) answers with the load profile it can
     follow, and the DSO allocates again (``envelope_rounds``);

   objective, by priority: feeder limits (penalised slack, the last resort) ≫ band excess
   (HEMS) ≫ the peak above the peak already realised ≫ comfort preference ≫ energy terms
   (:mod:`twin.optim.options`); the service levels are hard bounds, relaxed only where the
   devices physically cannot meet them (reported);
3. bands, per 15-minute interval: every signed household gets its own forecast base load minus
   PV, its allocated controllable load, and an equal share of the capacity left under the
   planned peak (and under every modelled limit);
4. every interval, each signed household's HEMS dispatches inside its band: it runs its
   devices at their planned power, with service guards (never let the temperature fall below
   the band; never fall behind the EV's deadline); if the band cannot hold base load plus what
   the guards need, it reduces the battery, then the EV, then the heat pump (a hybrid's boiler
   takes over) down to the guards, and only then exceeds the band — service first, measured
   and reported.

Never silent: physically unreachable service levels, planned feeder-limit exceedance, band
excess and any service level missed in the simulated result are reported in the KPIs
(which household, which term, when, by how much) and logged as warnings. A solver failure or
time limit falls back to firm behaviour for the signed households until the next successful
re-plan, flagged in the KPIs.

The package splits the contract by job:

* :mod:`~twin.contracts.performance.terms` — the contract's terms and planning settings;
* :mod:`~twin.contracts.performance.dso` — the DSO: feeder limits, allocation LP, bands (it
  reads a :class:`~twin.view.DsoView` only);
* :mod:`~twin.contracts.performance.households` — the signed households' HEMSs: envelopes,
  planning inside the band, dispatch with service guards (a :class:`~twin.view.HouseholdView`);
* :mod:`~twin.contracts.performance.contract` — the two wired together, re-plans and KPIs.
"""

from twin.contracts.performance.contract import PerformanceContract
from twin.contracts.performance.terms import PerformanceTerms

__all__ = ["PerformanceContract", "PerformanceTerms"]
