//! Unlinking a member's MES account: the pairing revoked at MES, the tokens dropped. The
//! readings stay; nothing more is sent for the member until linked again.

use crate::hub::ingest::{SharedStore, with_store};
use crate::mes::{MesConfig, PairingClient};
use crate::store::{MemberId, StoreError};

/// Revokes `member`'s pairing at MES and forgets their tokens, `why` going to the audit log.
/// Returns whether MES was told: when it cannot be (offline, misconfigured), sending stops
/// all the same, and the household should withdraw the access from their MES account.
pub async fn unlink_member(
    store: &SharedStore,
    mes: &MesConfig,
    member: MemberId,
    why: &'static str,
) -> Result<bool, StoreError> {
    let tokens = with_store(store, move |s| {
        s.member(member)?;
        s.tokens(member)
    })
    .await?;
    let revoked = match (tokens, PairingClient::new(mes)) {
        (Some(tokens), Ok(client)) => match client.revoke(&tokens).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(member = member.0, "MES revocation failed: {e}");
                false
            }
        },
        (None, _) => true,
        (Some(_), Err(e)) => {
            tracing::warn!(member = member.0, "MES revocation impossible: {e}");
            false
        }
    };
    with_store(store, move |s| s.unlink_mes(member, why)).await?;
    Ok(revoked)
}
