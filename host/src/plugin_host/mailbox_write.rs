//! The `mailbox-write` import: changes to the authenticated user's mail, each call on one of the
//! account's pooled IMAP sessions, like `mailbox` (the same capability, the same errors).
//!
//! A change is repeated on a fresh session only when it failed before anything that changes
//! the mailbox was sent (see [`WriteResult`]): a pooled connection the server closed meanwhile
//! costs a retry, never a duplicated message.

use super::eas_edge::gateway::mailbox_write::{self as wit, Error, Folder};
use super::mailbox::MailboxCapability;
use super::mailbox_convert as convert;
use crate::imap::{SearchCriteria, Session, WriteResult};

impl MailboxCapability {
    /// Runs a change on the account's session. `folder` names the folder that a missing-folder
    /// error is about (`None`: the error names it, for calls that involve two folders).
    async fn write<T>(
        &mut self,
        folder: Option<&str>,
        op: impl AsyncFnMut(&mut Session) -> WriteResult<T>,
    ) -> Result<T, Error> {
        let account = self.account()?;
        self.forget_vouched_flags();
        account.run(op).await.and_then(|outcome| outcome).map_err(|error| self.error(folder, error))
    }
}

impl wit::Host for MailboxCapability {
    async fn store_flags(
        &mut self,
        folder: String,
        uids: Vec<u32>,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> Result<(), Error> {
        let name = folder.clone();
        let op = async move |session: &mut Session| {
            session.store_flags(&name, &uids, &add, &remove).await
        };
        self.write(Some(&folder), op).await
    }

    async fn move_messages(
        &mut self,
        source: String,
        uids: Vec<u32>,
        destination: String,
    ) -> Result<Vec<(u32, u32)>, Error> {
        let op = async move |session: &mut Session| {
            session.move_messages(&source, &uids, &destination).await
        };
        self.write(None, op).await
    }

    async fn expunge(&mut self, folder: String, uids: Vec<u32>) -> Result<(), Error> {
        let name = folder.clone();
        let op = async move |session: &mut Session| session.expunge(&name, &uids).await;
        self.write(Some(&folder), op).await
    }

    async fn append(
        &mut self,
        folder: String,
        message: Vec<u8>,
        flags: Vec<String>,
        internal_date: Option<i64>,
    ) -> Result<Option<u32>, Error> {
        let name = folder.clone();
        let op = async move |session: &mut Session| {
            session.append(&name, &message, &flags, internal_date).await
        };
        self.write(Some(&folder), op).await
    }

    async fn search(&mut self, folder: String, query: wit::SearchQuery) -> Result<Vec<u32>, Error> {
        let account = self.account()?;
        let criteria = SearchCriteria {
            text: query.text,
            since: query.since,
            before: query.before,
            header: query.header,
        };
        let name = folder.clone();
        account
            .run(async move |session: &mut Session| session.search(&name, &criteria).await)
            .await
            .map_err(|error| self.error(Some(&folder), error))
    }

    async fn create_folder(
        &mut self,
        parent: Option<String>,
        name: String,
    ) -> Result<Folder, Error> {
        let op = async move |session: &mut Session| {
            session.create_folder(parent.as_deref(), &name).await
        };
        self.write(None, op).await.map(convert::folder)
    }

    async fn rename_folder(
        &mut self,
        folder: String,
        new_parent: Option<String>,
        new_name: String,
    ) -> Result<Folder, Error> {
        let op = async move |session: &mut Session| {
            session.rename_folder(&folder, new_parent.as_deref(), &new_name).await
        };
        self.write(None, op).await.map(convert::folder)
    }

    async fn delete_folder(&mut self, folder: String) -> Result<(), Error> {
        let name = folder.clone();
        let op = async move |session: &mut Session| session.delete_folder(&name).await;
        self.write(Some(&folder), op).await
    }

    async fn empty_folder(&mut self, folder: String) -> Result<(), Error> {
        let name = folder.clone();
        let op = async move |session: &mut Session| session.empty_folder(&name).await;
        self.write(Some(&folder), op).await
    }
}
