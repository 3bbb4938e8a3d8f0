"""Real Flight SQL clients against a running shoplake server, as BI tools use them.

Usage: bi_clients.py HOST:PORT ENGINEER_USER ENGINEER_PW ANALYST_USER ANALYST_PW SHOP_ID

- ADBC (adbc-driver-flightsql, the Go Flight SQL client Grafana's data source also uses):
  user/password login, a query fetched as Arrow, adbc_get_objects, adbc_get_table_schema,
  a prepared statement with a parameter.
- flightsql-dbapi + SQLAlchemy (the path Apache Superset uses): inspector schema, table
  and column names, then a GROUP BY query.
- Roles: the analyst sees no raw schema and cannot query raw tables.

Prints one JSON object with what each client saw; the Rust test compares it with the
warehouse. Exits non-zero on the first failed check.
"""

import json
import os
import sys

import adbc_driver_flightsql.dbapi as adbc
import pyarrow as pa
from sqlalchemy import create_engine, inspect, text

addr, eng_user, eng_pw, ana_user, ana_pw, shop_id = sys.argv[1:7]
host, port = addr.rsplit(":", 1)
out = {}


def adbc_connect(user, pw):
    return adbc.connect(f"grpc://{addr}", db_kwargs={"username": user, "password": pw})


# --- ADBC ---------------------------------------------------------------------------
with adbc_connect(eng_user, eng_pw) as conn:
    cur = conn.cursor()
    cur.execute(
        "select shop_id, count(*) as days, sum(orders) as orders "
        "from marts.gmv_daily group by shop_id order by shop_id"
    )
    t = cur.fetch_arrow_table()
    assert isinstance(t, pa.Table) and t.num_rows > 0, t
    out["adbc_orders_by_shop"] = {r["shop_id"]: int(r["orders"]) for r in t.to_pylist()}

    objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
    seen = {}
    for cat in objects:
        for sch in cat["catalog_db_schemas"] or []:
            for tab in sch["db_schema_tables"] or []:
                cols = [c["column_name"] for c in tab["table_columns"] or []]
                seen[f'{sch["db_schema_name"]}.{tab["table_name"]}'] = cols
    out["adbc_objects"] = sorted(seen)
    assert "marts.gmv_daily" in seen and "raw.orders" in seen, sorted(seen)
    assert "net_gmv" in seen["marts.gmv_daily"], seen["marts.gmv_daily"]

    schema = conn.adbc_get_table_schema("gmv_daily", db_schema_filter="marts")
    out["adbc_gmv_daily_columns"] = schema.names

    # DBAPI execute with parameters: prepare -> DoPut bind -> GetFlightInfo -> DoGet.
    cur.execute(
        "select count(*) as n, sum(orders) as orders from marts.gmv_daily where shop_id = ?",
        parameters=(shop_id,),
    )
    row = cur.fetchone()
    out["adbc_prepared_shop_orders"] = int(row[1])
    assert int(row[1]) == out["adbc_orders_by_shop"][shop_id], (row, out)
    cur.close()

# --- flightsql-dbapi + SQLAlchemy (Superset) -------------------------------------------
# `datafusion://` resolves through the package's entry point in a fresh process (what
# Superset does); `datafusion+flightsql://` only works once flightsql.sqlalchemy is imported.
engine = create_engine(
    f"datafusion://{eng_user}:{eng_pw}@{host}:{port}?insecure=true"
)
insp = inspect(engine)
out["sqla_schemas"] = sorted(insp.get_schema_names())
out["sqla_marts_tables"] = sorted(insp.get_table_names(schema="marts"))
cols = insp.get_columns("gmv_daily", schema="marts")
out["sqla_gmv_daily_columns"] = [c["name"] for c in cols]
with engine.connect() as c:
    rows = c.execute(
        text(
            "select status, count(*) as n from raw.orders group by status order by status"
        )
    ).fetchall()
out["sqla_orders_by_status"] = {r[0]: int(r[1]) for r in rows}

# --- Roles: the analyst ------------------------------------------------------------------
ana_engine = create_engine(
    f"datafusion://{ana_user}:{ana_pw}@{host}:{port}?insecure=true"
)
ana_insp = inspect(ana_engine)
out["analyst_schemas"] = sorted(ana_insp.get_schema_names())
out["analyst_raw_tables"] = ana_insp.get_table_names(schema="raw")
try:
    with ana_engine.connect() as c:
        c.execute(text("select count(*) from raw.orders")).fetchall()
    out["analyst_raw_query"] = "allowed"
except Exception as e:  # the driver raises its own error types
    out["analyst_raw_query"] = str(e)
with adbc_connect(ana_user, ana_pw) as conn:
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    out["analyst_adbc_schemas"] = sorted(
        s["db_schema_name"] for cat in objects for s in cat["catalog_db_schemas"] or []
    )

print(json.dumps(out))
sys.stdout.flush()
# The Flight client libraries' threads can abort at interpreter teardown; the answer is out.
os._exit(0)
